/**
 * Chat's part of ending sessions: every room the user is a member of closes the sockets the ended
 * sessions opened (by tag, with 4401). The room's heartbeat alarm re-checks sessions in D1, so a
 * room this misses still cuts the socket within one heartbeat period.
 */
import type { EndedSessionsContext } from "../../lifecycle";
import { roomIdsOf } from "./members";
import { roomStub } from "./room";

/** Room calls in flight at once (each is a subrequest; the rest wait their turn). */
const PARALLEL_ROOMS = 50;

/**
 * Closes the user's sockets of `sessions` in `roomIds`, or in every room the user is a member of
 * (one indexed D1 query). Account deletion passes the rooms it read before the memberships went.
 */
export async function closeChatSessionSockets(
  { env, db, userId, sessions }: EndedSessionsContext,
  roomIds?: string[],
): Promise<void> {
  const rooms = roomIds ?? (await roomIdsOf(db, userId));
  const failures: unknown[] = [];
  for (let i = 0; i < rooms.length; i += PARALLEL_ROOMS) {
    const part = rooms.slice(i, i + PARALLEL_ROOMS);
    const results = await Promise.allSettled(part.map((id) => roomStub(env, id).endSessions(id, userId, sessions)));
    for (const r of results) if (r.status === "rejected") failures.push(r.reason);
  }
  if (failures.length) {
    const first = (failures[0] as Error)?.message ?? String(failures[0]);
    throw new Error(`${failures.length} of ${rooms.length} rooms could not close the sockets: ${first}`);
  }
}

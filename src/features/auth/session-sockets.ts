/**
 * A socket lives no longer than the session whose access token opened it. Every place that ends
 * sessions (logout, `DELETE /v1/auth/sessions/:id`, password change and reset, account deletion)
 * calls `endSessionSockets` after its D1 write committed, in `waitUntil`; each kind of socket
 * registers a closer here that finds its sockets of those sessions and closes them with 4401.
 *
 * A closer is the fast path, not the guarantee: each socket kind also re-checks, in its own
 * heartbeat, that the sessions of its open sockets still exist (one batched D1 query per period),
 * so a lost notification still cuts the socket within one heartbeat period. Sockets keep their
 * session id in their state and are tagged with it, so neither path costs a query per frame.
 */
import { type Database, primaryDb } from "../../db";
import { closeChatSessionSockets } from "../chat/sessions";
import { closeLiveSessionSockets } from "../collections/live";

/** The sessions that ended: some of the user's sessions, or all of them. */
export type EndedSessions = string[] | "all";

export interface EndedSessionsContext {
  env: Env;
  db: Database;
  userId: string;
  sessions: EndedSessions;
}

/** Closes one kind of socket opened with the ended sessions; throws when some could not be reached. */
export type SessionSocketCloser = (ctx: EndedSessionsContext) => Promise<void>;

/** Every socket kind's closer (a live-data subscription socket adds its own here). */
export const sessionSocketClosers: SessionSocketCloser[] = [closeChatSessionSockets, closeLiveSessionSockets];

/**
 * Closes the sockets opened with `sessions` of `userId`, of every kind. Never throws (it runs after
 * the response, and the heartbeat re-checks are the backstop); failures are logged.
 */
export async function endSessionSockets(env: Env, userId: string, sessions: EndedSessions): Promise<void> {
  if (sessions !== "all" && sessions.length === 0) return;
  // The primary: a replica that lags could miss a room the user joined a moment ago.
  const ctx: EndedSessionsContext = { env, db: primaryDb(env.DB), userId, sessions };
  const results = await Promise.allSettled(sessionSocketClosers.map((close) => close(ctx)));
  for (const r of results) {
    if (r.status === "rejected") console.error("closing the sockets of ended sessions failed (the heartbeat re-check will):", (r.reason as Error)?.message ?? String(r.reason));
  }
}

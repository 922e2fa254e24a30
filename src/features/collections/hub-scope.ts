/**
 * What a live-data hub covers, by its key: the part of the log it reads, which changes a socket on a
 * team's hub may see, and whom it registers with (a shard with its root, a member's hub with each
 * of its user's teams' hubs) or nudges (a team's hub, its members' hubs).
 */
import type { Database } from "../../db";
import type { TeamRole } from "../../db/schema";
import { RANK, teamIdsOfQuery } from "../teams";
import { type Access, leastRank, visible } from "./access";
import { type HubKey, hubStub, liveAccess, rootKey } from "./live";
import type { Collection } from "./registry";
import type { LogItem, LogView } from "./service";

/** What a hub reads of the log: one owner's changes, everyone's, one team's, or one member's teams'. */
export function logViewOf(k: HubKey, col: Collection): LogView {
  if (k.owner !== undefined) return { acc: { kind: "own", userId: k.owner } };
  if (k.team !== undefined) return { acc: { kind: "all" }, teamId: k.team };
  if (k.member !== undefined) return { acc: liveAccess(col, k.member) };
  return { acc: { kind: "all" } };
}

/** A team's hub: whether a member with `role` may list anything of the collection. */
export function admits(col: Collection, userId: string, role: TeamRole): boolean {
  const acc = liveAccess(col, userId);
  return acc.kind === "team" && RANK[role] >= leastRank(acc);
}

/**
 * Which changes a socket on a team's hub may see, by its user's role and the record's owner (the
 * rules may give a record's owner more than their role). Every other hub's read is already the
 * socket's scope.
 */
export function teamSocketFilter(col: Collection, a: { userId: string; role?: TeamRole | undefined }) {
  const acc: Access = liveAccess(col, a.userId);
  return (x: LogItem) => visible(acc, { ownerId: x.ownerId, role: a.role ?? null });
}

/**
 * A shard asks the root (shard 0) to forward pages to it; a member's hub asks each of its user's
 * teams' hubs for nudges (idempotent; repeated by the heartbeat).
 */
export async function registerHub(env: Env, db: Database, key: HubKey): Promise<void> {
  const { collection, member } = key;
  if (member === undefined) {
    const root = rootKey(collection);
    return hubStub(env, root).shardLive(root, key.shard!);
  }
  const teams = await teamIdsOfQuery(db, member);
  await Promise.all(
    teams.map(({ teamId }) =>
      hubStub(env, { collection, team: teamId }).memberLive({ collection, team: teamId }, member),
    ),
  );
}

/** A team's hub nudges its members' hubs; returns the members whose hubs have no socket any more. */
export async function nudgeMemberHubs(
  env: Env,
  collection: string,
  members: string[],
  seq: number | null,
): Promise<string[]> {
  const answers = await Promise.allSettled(
    members.map((member) => hubStub(env, { collection, member }).nudge({ collection, member }, seq)),
  );
  const dropped: string[] = [];
  answers.forEach((a, i) => {
    if (a.status === "fulfilled" && a.value === false) dropped.push(members[i]!);
    if (a.status === "rejected") console.error("live: nudging a member hub failed:", (a.reason as Error)?.message);
  });
  return dropped;
}

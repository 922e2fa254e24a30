/**
 * Live data: which hub a subscription lives on, how writes reach it, and the frames (JSON text).
 * See docs/architecture.md#live-data-hubs.
 */
import * as v from "valibot";
import { limits } from "../../config";
import type { Database } from "../../db";
import type { EndedSessionsContext } from "../../lifecycle";
import { teamIdsOfQuery } from "../teams";
import { type Access, access } from "./access";
import { type Collection, collections } from "./registry";

/**
 * Which hub: one owner's hub, one shard of a collection listed across owners, one team's hub (a
 * team-scoped collection's subscriptions to that team), or one member's hub (a user's subscription
 * to every team of theirs). Exactly one of `owner`, `shard`, `team`, `member` is set.
 */
export type HubKey =
  | { collection: string; owner: string; shard?: undefined; team?: undefined; member?: undefined }
  | { collection: string; shard: number; owner?: undefined; team?: undefined; member?: undefined }
  | { collection: string; team: string; owner?: undefined; shard?: undefined; member?: undefined }
  | { collection: string; member: string; owner?: undefined; shard?: undefined; team?: undefined };

/**
 * Who users may list in a collection: their own records, everyone's, their teams' (team-scoped), or
 * nothing (rule `none`: service key only).
 */
export type LiveScope = "own" | "all" | "team" | "none";

/** What user `userId` may list: both `list` and `read` must allow it (as for `GET /records` and `/changes`). */
export const liveAccess = (c: Collection, userId: string): Access =>
  access(c, ["list", "read"], { kind: "user", userId, sessionId: "", anonymous: false });

/** The scope of a collection's subscriptions (the service key cannot subscribe: sockets belong to sessions). */
export function liveScope(c: Collection): LiveScope {
  const kind = liveAccess(c, "").kind;
  return kind === "denied" ? "none" : kind;
}

/** FNV-1a of the user id: the shard a user's subscriptions to a shared collection live on. */
export function shardOf(userId: string, shards = limits.liveHubShards): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) h = Math.imul(h ^ userId.charCodeAt(i), 0x01000193);
  return (h >>> 0) % shards;
}

/**
 * The hub a user's subscription to `c` lives on (the scope must not be `none`); in a team-scoped
 * collection, `teamId`'s hub, or without one the user's own hub over all their teams.
 */
export function hubKeyFor(c: Collection, userId: string, teamId?: string): HubKey {
  const scope = liveScope(c);
  if (scope === "team")
    return teamId === undefined ? { collection: c.name, member: userId } : { collection: c.name, team: teamId };
  return scope === "own" ? { collection: c.name, owner: userId } : { collection: c.name, shard: shardOf(userId) };
}

/** The Durable Object name of a hub. */
export const hubName = (k: HubKey): string =>
  k.owner !== undefined
    ? `${k.collection}/owner/${k.owner}`
    : k.team !== undefined
      ? `${k.collection}/team/${k.team}`
      : k.member !== undefined
        ? `${k.collection}/member/${k.member}`
        : `${k.collection}/shard/${k.shard}`;

export const hubStub = (env: Env, k: HubKey) => env.COLLECTION_HUB.get(env.COLLECTION_HUB.idFromName(hubName(k)));

/** The hub that reads the log for a shared collection and forwards each page to the other shards: shard 0. */
export const rootKey = (collection: string): HubKey => ({ collection, shard: 0 });

/** Whether a hub reads the log for itself (every hub but shards 1…n, which get shard 0's pages forwarded). */
export const isRoot = (k: HubKey): boolean => k.shard === undefined || k.shard === 0;

/**
 * The hub a write notifies (none for an owner-scoped record without owner: no user lists it). For a
 * shared collection that is the root (shard 0), which reads the log once and forwards the page to
 * the shards that have live sockets: one D1 read per (coalesced) write, whatever the shard count.
 */
function hubsFor(c: Collection, ownerId: string | null, teamId: string | null): HubKey[] {
  const scope = liveScope(c);
  if (scope === "none") return [];
  // A team's hub also nudges the member hubs of that team's members that have sockets.
  if (scope === "team") return teamId === null ? [] : [{ collection: c.name, team: teamId }];
  if (scope === "own") return ownerId === null ? [] : [{ collection: c.name, owner: ownerId }];
  return [rootKey(c.name)];
}

/** A committed write: its collection, its record's owner and team, and its change-log seq. */
export interface Change {
  collection: Collection;
  ownerId: string | null;
  /** The record's team (team-scoped collections), else null. */
  teamId: string | null;
  seq: number;
}

/** The owner and team of a record, for its `Change`. */
export const changeOf = (r: Record<string, unknown> & { ownerId: string | null }) => ({
  ownerId: r.ownerId,
  teamId: typeof r.teamId === "string" ? r.teamId : null,
});

/**
 * Tells the hubs that changes committed (one RPC per hub, with the highest seq for it). Never throws:
 * it runs after the answer, and a lost notification is repaired by the next one or by the hub's
 * heartbeat, which read the log from where the hub stands.
 */
export async function notifyHubs(env: Env, changes: Change[]): Promise<void> {
  const latest = new Map<string, { key: HubKey; seq: number | null }>();
  for (const ch of changes) {
    for (const key of hubsFor(ch.collection, ch.ownerId, ch.teamId)) {
      const name = hubName(key);
      const seen = latest.get(name);
      if (!seen || (seen.seq !== null && ch.seq > seen.seq)) latest.set(name, { key, seq: ch.seq });
    }
  }
  // A collection that counts the written one (`field.count`) changed too (in the write's statement):
  // its shared hubs read the log again. (Owner- or team-scoped counters: their hubs' backstop.)
  for (const name of new Set(changes.map((ch) => ch.collection.name)))
    for (const parent of collections)
      if (parent.counts.some((c) => c.of === name) && liveScope(parent) === "all") {
        const key = rootKey(parent.name);
        latest.set(hubName(key), { key, seq: null });
      }
  await callHubs(env, [...latest.values()], "notifying live-data hubs");
}

/** Every hub of every collection listed across owners reads the log again (after a write with no seq). */
export async function notifyEveryone(env: Env): Promise<void> {
  const targets = collections
    .filter((c) => liveScope(c) === "all")
    .flatMap((c) => hubsFor(c, null, null).map((key) => ({ key, seq: null })));
  await callHubs(env, targets, "notifying live-data hubs of an account deletion");
}

async function callHubs(env: Env, targets: { key: HubKey; seq: number | null }[], what: string): Promise<void> {
  await settleHubCalls(
    what,
    targets.map((t) => hubStub(env, t.key).notify(t.key, t.seq)),
    "their next notification or heartbeat repairs it",
  );
}

/**
 * Waits for calls to hubs made after a commit and logs how many failed, with what repairs them;
 * never throws (the write is committed; each hub re-checks on its own).
 */
export async function settleHubCalls(what: string, calls: Promise<unknown>[], repair: string): Promise<void> {
  const failed = (await Promise.allSettled(calls)).filter((r) => r.status === "rejected");
  if (failed.length)
    console.error(
      `${what}: ${failed.length} of ${calls.length} failed (${repair}):`,
      (failed[0] as PromiseRejectedResult).reason?.message ?? String((failed[0] as PromiseRejectedResult).reason),
    );
}

/**
 * Live data's part of ending sessions (registered in `sessionSocketClosers`): the user's
 * subscription sockets can only be on the hub of each collection that `hubKeyFor` names, so one
 * RPC per collection closes them (4401), no query needed. The hubs' heartbeat re-checks sessions too.
 */
export async function closeLiveSessionSockets(
  { env, db, userId, sessions }: EndedSessionsContext,
  o: { teams: boolean } = { teams: true },
): Promise<void> {
  const keys = collections.filter((c) => liveScope(c) !== "none").map((c) => hubKeyFor(c, userId));
  // Subscriptions to one team live on that team's hub: one per team of the user's.
  if (o.teams) keys.push(...(await teamHubsOf(db, userId)));
  const results = await Promise.allSettled(keys.map((k) => hubStub(env, k).endSessions(k, userId, sessions)));
  const failed = results.filter((r) => r.status === "rejected");
  if (failed.length)
    throw new Error(
      `${failed.length} of ${keys.length} live-data hubs could not close the sockets: ` +
        ((failed[0] as PromiseRejectedResult).reason?.message ?? "unknown"),
    );
}

/** The team hubs a user's one-team subscriptions can be on: each team-scoped collection × each of their teams. */
async function teamHubsOf(db: Database, userId: string): Promise<HubKey[]> {
  const cols = collections.filter((c) => liveScope(c) === "team");
  if (cols.length === 0) return [];
  const teams = await teamIdsOfQuery(db, userId);
  return cols.flatMap((c) => teams.map(({ teamId }): HubKey => ({ collection: c.name, team: teamId })));
}

// --- frames ----------------------------------------------------------------------------------

/** Internal headers the Worker sets on the upgrade it forwards to a hub (a fresh request: nothing of the client's). */
export const LIVE_HEADERS = {
  user: "x-outpost-live-user",
  session: "x-outpost-live-session",
  key: "x-outpost-live-hub",
  since: "x-outpost-live-since",
} as const;

/** Live data's own close codes: 4410 the cursor is past retention, 1011 the replay failed (4401, 4408: lib/sockets). */
export const CLOSE_RESYNC = 4410;
export const CLOSE_INTERNAL = 1011;

export const LiveErrorCode = v.picklist(["resync_required", "bad_frame", "internal"]);
export type LiveErrorCode = v.InferOutput<typeof LiveErrorCode>;

/** Server frames (for the client SDK and the tests; `item` is what `/changes` returns). */
export const LiveServerFrame = v.variant("type", [
  v.object({
    type: v.literal("change"),
    cursor: v.string(),
    item: v.looseObject({ id: v.string(), version: v.number() }),
  }),
  v.object({ type: v.literal("ready"), cursor: v.string() }),
  v.object({ type: v.literal("error"), code: LiveErrorCode, message: v.string() }),
  v.object({ type: v.literal("pong") }),
]);
export type LiveServerFrame = v.InferOutput<typeof LiveServerFrame>;

/** The one client frame. */
export const LiveClientFrame = v.strictObject({ type: v.literal("ping") });

/**
 * Live data: which hub a subscription lives on, how writes reach it, and the frames (JSON text).
 * See docs/architecture.md#live-data-hubs.
 */
import * as v from "valibot";
import { limits } from "../../config";
import type { EndedSessionsContext } from "../../lifecycle";
import type { Rule } from "./define";
import { type Collection, collections } from "./registry";

/** Which hub: one owner's hub, or one shard of a collection listed across owners. */
export type HubKey =
  | { collection: string; owner: string; shard?: undefined }
  | { collection: string; shard: number; owner?: undefined };

/** Who users may list in a collection: their own records, everyone's, or nothing (rule `none`: service key only). */
export type LiveScope = "own" | "all" | "none";

/** A rule as it applies to a signed-in user (the service key cannot subscribe: sockets belong to sessions). */
const userAccess = (rule: Rule): LiveScope => (rule === "owner" ? "own" : rule === "none" ? "none" : "all");

/** What a user may list: both `list` and `read` must allow it (as for `GET /records` and `/changes`). */
export function liveScope(c: Collection): LiveScope {
  const list = userAccess(c.rules.list);
  const read = userAccess(c.rules.read);
  if (list === "none" || read === "none") return "none";
  return list === "own" || read === "own" ? "own" : "all";
}

/** FNV-1a of the user id: the shard a user's subscriptions to a shared collection live on. */
export function shardOf(userId: string, shards = limits.liveHubShards): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) h = Math.imul(h ^ userId.charCodeAt(i), 0x01000193);
  return (h >>> 0) % shards;
}

/** The hub a user's subscription to `c` lives on (the scope must not be `none`). */
export const hubKeyFor = (c: Collection, userId: string): HubKey =>
  liveScope(c) === "own" ? { collection: c.name, owner: userId } : { collection: c.name, shard: shardOf(userId) };

/** The Durable Object name of a hub. */
export const hubName = (k: HubKey): string =>
  k.owner !== undefined ? `${k.collection}/owner/${k.owner}` : `${k.collection}/shard/${k.shard}`;

export const hubStub = (env: Env, k: HubKey) => env.COLLECTION_HUB.get(env.COLLECTION_HUB.idFromName(hubName(k)));

/** The hub that reads the log for a shared collection and forwards each page to the other shards: shard 0. */
export const rootKey = (collection: string): HubKey => ({ collection, shard: 0 });

/** Whether a hub reads the log for itself and others (an owner's hub, or shard 0), or gets pages forwarded. */
export const isRoot = (k: HubKey): boolean => k.owner !== undefined || k.shard === 0;

/**
 * The hub a write notifies (none for an owner-scoped record without owner: no user lists it). For a
 * shared collection that is the root (shard 0), which reads the log once and forwards the page to
 * the shards that have live sockets: one D1 read per (coalesced) write, whatever the shard count.
 */
function hubsFor(c: Collection, ownerId: string | null): HubKey[] {
  const scope = liveScope(c);
  if (scope === "none") return [];
  if (scope === "own") return ownerId === null ? [] : [{ collection: c.name, owner: ownerId }];
  return [rootKey(c.name)];
}

/** A committed write: its collection, its record's owner and its change-log seq. */
export interface Change {
  collection: Collection;
  ownerId: string | null;
  seq: number;
}

/**
 * Tells the hubs that changes committed (one RPC per hub, with the highest seq for it). Never throws:
 * it runs after the answer, and a lost notification is repaired by the next one or by the hub's
 * heartbeat, which read the log from where the hub stands.
 */
export async function notifyHubs(env: Env, changes: Change[]): Promise<void> {
  const latest = new Map<string, { key: HubKey; seq: number | null }>();
  for (const ch of changes) {
    for (const key of hubsFor(ch.collection, ch.ownerId)) {
      const name = hubName(key);
      const seen = latest.get(name);
      if (!seen || (seen.seq !== null && ch.seq > seen.seq)) latest.set(name, { key, seq: ch.seq });
    }
  }
  await callHubs(env, [...latest.values()], "notifying live-data hubs");
}

/** Every hub of every collection listed across owners reads the log again (after a write with no seq). */
export async function notifyEveryone(env: Env): Promise<void> {
  const targets = collections
    .filter((c) => liveScope(c) === "all")
    .flatMap((c) => hubsFor(c, null).map((key) => ({ key, seq: null })));
  await callHubs(env, targets, "notifying live-data hubs of an account deletion");
}

async function callHubs(env: Env, targets: { key: HubKey; seq: number | null }[], what: string): Promise<void> {
  const results = await Promise.allSettled(targets.map((t) => hubStub(env, t.key).notify(t.key, t.seq)));
  const failed = results.filter((r) => r.status === "rejected");
  if (failed.length)
    console.error(
      `${what}: ${failed.length} of ${targets.length} failed (their next notification or heartbeat repairs it):`,
      (failed[0] as PromiseRejectedResult).reason?.message ?? String((failed[0] as PromiseRejectedResult).reason),
    );
}

/**
 * Live data's part of ending sessions (registered in `sessionSocketClosers`): the user's
 * subscription sockets can only be on the hub of each collection that `hubKeyFor` names, so one
 * RPC per collection closes them (4401), no query needed. The hubs' heartbeat re-checks sessions too.
 */
export async function closeLiveSessionSockets({ env, userId, sessions }: EndedSessionsContext): Promise<void> {
  const keys = collections.filter((c) => liveScope(c) !== "none").map((c) => hubKeyFor(c, userId));
  const results = await Promise.allSettled(keys.map((k) => hubStub(env, k).endSessions(k, userId, sessions)));
  const failed = results.filter((r) => r.status === "rejected");
  if (failed.length)
    throw new Error(
      `${failed.length} of ${keys.length} live-data hubs could not close the sockets: ` +
        ((failed[0] as PromiseRejectedResult).reason?.message ?? "unknown"),
    );
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

/**
 * App data: the change log the declared collections' sync feed reads, and the stored responses of
 * idempotent POSTs. The collections' own tables are declared in src/app/collections.ts (drizzle-kit
 * reads that file too: drizzle.config.ts).
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/**
 * One row per record ever written, replaced (new `seq`) on every write in the same D1 batch as
 * the write itself, so `seq > cursor` is exactly "changed since". `seq` is AUTOINCREMENT: a value
 * is never reused, even after the highest row is replaced. Deleted records stay as tombstones.
 */
export const recordChanges = sqliteTable(
  "record_changes",
  {
    seq: integer("seq").primaryKey({ autoIncrement: true }),
    collection: text("collection").notNull(),
    recordId: text("record_id").notNull(),
    /** The record's owner, so owner-only feeds filter by index; null after the owner's account is deleted. */
    ownerId: text("owner_id"),
    /** The record's team in a team-scoped collection (null otherwise), so a team's feed filters by index. */
    teamId: text("team_id"),
    version: integer("version").notNull(),
    deleted: integer("deleted", { mode: "boolean" }).notNull(),
    changedAt: text("changed_at").notNull(),
  },
  (t) => [
    uniqueIndex("record_changes_record_unique").on(t.collection, t.recordId),
    index("record_changes_collection_seq_idx").on(t.collection, t.seq),
    index("record_changes_owner_seq_idx").on(t.collection, t.ownerId, t.seq),
    index("record_changes_team_seq_idx").on(t.collection, t.teamId, t.seq).where(sql`team_id IS NOT NULL`),
    // The retention task's walk over old tombstones (only they are pruned; live records' rows are the feed).
    index("record_changes_tombstones_idx").on(t.changedAt).where(sql`deleted = 1`),
  ],
);

/**
 * Per collection, the highest `seq` the retention task pruned: a `since` cursor below it may have
 * missed a deletion that is gone from the log, so it gets 410 `resync_required`.
 */
export const recordChangeHorizons = sqliteTable("record_change_horizons", {
  collection: text("collection").primaryKey(),
  seq: integer("seq").notNull(),
  prunedAt: text("pruned_at").notNull(),
});

/**
 * Always empty. `POST /v1/batch` makes each operation's precondition a statement that inserts a NULL
 * here when the precondition does not hold: the NOT NULL violation aborts the whole D1 batch (its
 * one transaction), so a batch whose operation fails writes nothing.
 */
export const batchGuards = sqliteTable("batch_guards", {
  mustHold: integer("must_hold").notNull(),
});

/**
 * `Idempotency-Key` of POST requests (src/middleware/idempotency.ts): claimed `in_flight` before
 * the handler runs, then holding the first response for replay until `expiresAt`.
 */
export const idempotencyKeys = sqliteTable(
  "idempotency_keys",
  {
    /** `user:<id>` or `service`: keys are per caller. */
    scope: text("scope").notNull(),
    key: text("key").notNull(),
    /** SHA-256 of method, path and body: the same key with another request is refused. */
    requestHash: text("request_hash").notNull(),
    state: text("state", { enum: ["in_flight", "done"] }).notNull(),
    status: integer("status"),
    /** JSON object of the replayed response headers. */
    headers: text("headers"),
    body: text("body"),
    /** Random token of the request that holds the claim; only that request may store or release it. */
    lockId: text("lock_id").notNull(),
    lockedAt: text("locked_at").notNull(),
    expiresAt: text("expires_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.scope, t.key] }), index("idempotency_keys_expires_idx").on(t.expiresAt)],
);

/**
 * The live-data hubs that hold open subscription sockets, one row per hub (kind `owner`, `shard`,
 * `team` or `member`; `subject` the owner, shard number, team or member user id). A hub writes its
 * row in the batch of its first socket's replay read and deletes it when its last socket leaves; a
 * write's change-log row asks whether a hub that can show it has one, and notifies none when not
 * (src/features/collections/live-keys.ts). A stale row only costs a needless notification.
 */
export const liveHubs = sqliteTable(
  "live_hubs",
  {
    collection: text("collection").notNull(),
    kind: text("kind", { enum: ["owner", "shard", "team", "member"] }).notNull(),
    subject: text("subject").notNull(),
  },
  (t) => [primaryKey({ columns: [t.collection, t.kind, t.subject] })],
);

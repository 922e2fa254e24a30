/**
 * The app's own logic after a write: the event outbox the after hooks and webhooks read, who listens
 * to which event, each run of a hook or delivery of a webhook, and the webhooks themselves.
 *
 * Events are written by SQLite triggers on the collections' tables (and on `users` and `files`), in
 * the same transaction as the write that caused them, and only while someone listens to that event
 * (`event_listeners`): a write nobody listens to writes no event. See src/features/logic.
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { users } from "./auth";

/**
 * One row per change somebody listens to: `seq` is the change's identity (AUTOINCREMENT, never
 * reused), so a run keyed by it happens once whatever the Queue redelivers.
 */
export const events = sqliteTable(
  "events",
  {
    seq: integer("seq").primaryKey({ autoIncrement: true }),
    /** `<collection>.create|update|delete`, `users.create|delete`, `files.create`. */
    event: text("event").notNull(),
    recordId: text("record_id").notNull(),
    /** The row after the write as stored (JSON, column names), null for a delete. */
    record: text("record"),
    /** The row before the write (JSON, column names), null for a create. */
    previous: text("previous"),
    at: text("at").notNull(),
    /** Set once the event's runs (hook, webhook deliveries) exist. */
    dispatched: integer("dispatched", { mode: "boolean" }).notNull().default(false),
  },
  (t) => [index("events_undispatched_idx").on(t.seq).where(sql`dispatched = 0`), index("events_at_idx").on(t.at)],
);

/**
 * Who listens to an event (`*` = every event): `hook` rows come from the migrations (the app's
 * declared after hooks, written by `npm run db:generate`), `webhook:<id>` rows from the webhooks
 * admin API. The triggers write an event only while a row names it.
 */
export const eventListeners = sqliteTable(
  "event_listeners",
  {
    event: text("event").notNull(),
    source: text("source").notNull(),
  },
  (t) => [primaryKey({ columns: [t.event, t.source] })],
);

/**
 * One run of one event for one target: the app's after hook (`target = 'hook'`) or a webhook (its
 * id). `id` is the delivery id: the same on every attempt. A run is claimed (`running`, with a
 * lease) before it starts, so two copies of its Queue message never run it twice; a run whose lease
 * ran out (the Worker died mid-run) is claimed again.
 */
export const eventRuns = sqliteTable(
  "event_runs",
  {
    id: text("id").primaryKey(),
    seq: integer("seq")
      .notNull()
      .references(() => events.seq, { onDelete: "cascade" }),
    target: text("target").notNull(),
    status: text("status", { enum: ["pending", "running", "done", "parked"] }).notNull(),
    attempts: integer("attempts").notNull().default(0),
    lastError: text("last_error"),
    /** The HTTP status of a webhook's last answer. */
    lastStatus: integer("last_status"),
    nextAttemptAt: text("next_attempt_at").notNull(),
    leaseUntil: text("lease_until"),
    createdAt: text("created_at").notNull(),
    finishedAt: text("finished_at"),
  },
  (t) => [
    uniqueIndex("event_runs_seq_target_unique").on(t.seq, t.target),
    // The backstop's walk over runs whose Queue message may be lost (pending or running).
    index("event_runs_due_idx").on(t.nextAttemptAt).where(sql`status IN ('pending', 'running')`),
    // The console's and the API's lists: one target's runs, newest first.
    index("event_runs_target_idx").on(t.target, t.createdAt),
    index("event_runs_parked_idx").on(t.createdAt).where(sql`status = 'parked'`),
  ],
);

/** Webhooks (admin API): where the events go, signed with the webhook's secret. */
export const webhooks = sqliteTable(
  "webhooks",
  {
    id: text("id").primaryKey(),
    url: text("url").notNull(),
    /** JSON array of event names (`posts.create`, `users.delete`, `*`...). */
    events: text("events").notNull(),
    /** The signing secret, encrypted (AES-GCM, key derived from JWT_SECRET). */
    secret: text("secret").notNull(),
    /** After a rotation, the old secret still signs (a second `v1=`) until `previousUntil`. */
    previousSecret: text("previous_secret"),
    previousUntil: text("previous_until"),
    enabled: integer("enabled", { mode: "boolean" }).notNull().default(true),
    /** Since when every delivery has failed (null after a success); 24 hours of it disables the webhook. */
    failingSince: text("failing_since"),
    disabledAt: text("disabled_at"),
    createdBy: text("created_by").references(() => users.id, { onDelete: "set null" }),
    createdAt: text("created_at").notNull(),
  },
  (t) => [index("webhooks_created_idx").on(t.createdAt)],
);

/** The administration audit log: one row per admin action (API or console). */
import { index, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * Who did what to what. `id` is a UUIDv7, so the primary key is also the time order (lists page
 * on it, newest first). `actorId` is the admin's user id, or `service` for the service key.
 * No foreign keys: the trail outlives the accounts it names.
 */
export const auditLog = sqliteTable(
  "audit_log",
  {
    id: text("id").primaryKey(),
    actorId: text("actor_id").notNull(),
    /** What was done, `<resource>.<verb>` (e.g. `user.disable`, `record.update`). */
    action: text("action").notNull(),
    /** What it was done to (`user:<id>`, `notes:<id>`, `room:<id>#<seq>`...). */
    target: text("target").notNull(),
    at: text("at").notNull(),
    /** The server's id of the request that did it. */
    requestId: text("request_id").notNull(),
    /** Optional details as JSON (the fields a PATCH set, a push's title...). */
    detail: text("detail"),
    /** The `X-Request-Id` the client sent, if any (never used as the request's own id). */
    clientRequestId: text("client_request_id"),
  },
  (t) => [index("audit_log_target_idx").on(t.target, t.id)],
);

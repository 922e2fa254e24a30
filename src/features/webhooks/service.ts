/**
 * Webhooks' data: the webhooks (secrets sealed with a key derived from JWT_SECRET), their listener rows
 * (written and removed in the same batch as the webhook, so the event triggers write events only while
 * an enabled webhook wants them), their deliveries (`event_runs` whose target is the webhook's id).
 */
import { and, desc, eq, lt, ne, or, type SQL, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import * as v from "valibot";
import { limits } from "../../config";
import type { Database } from "../../db";
import { eventListeners, eventRuns, events, webhooks } from "../../db/schema";
import { decryptText, encryptText, randomToken } from "../../lib/crypto";
import { decodeCursor, encodeCursor } from "../../lib/cursor";
import { newId, nowIso } from "../../lib/ids";
import type { Delivery, Webhook } from "./schemas";

/** The audit row of an admin action, for the action's own batch (written only when `when` holds). */
export type AuditOf = (when: SQL) => BatchItem<"sqlite">;

/** The statement before the audit row changed something. */
const WROTE = sql`changes() > 0`;

const SECRET_PURPOSE = "webhook-secret";

type WebhookRow = typeof webhooks.$inferSelect;

/** A webhook's listener rows are named after it. */
const listenerSource = (id: string) => `webhook:${id}`;

function parseEvents(json: string): string[] {
  try {
    const parsed: unknown = JSON.parse(json);
    return Array.isArray(parsed) ? parsed.filter((e): e is string => typeof e === "string") : [];
  } catch {
    return [];
  }
}

const toWebhook = (r: WebhookRow): Webhook => ({
  id: r.id,
  url: r.url,
  events: parseEvents(r.events),
  enabled: r.enabled,
  failingSince: r.failingSince,
  disabledAt: r.disabledAt,
  createdAt: r.createdAt,
});

/** A new signing secret: 32 random bytes. */
const newSecret = () => `whsec_${randomToken(32)}`;

const seal = (jwtSecret: string, secret: string) => encryptText(jwtSecret, SECRET_PURPOSE, secret);

/**
 * The signing secrets of a webhook: the current one, and the rotated-out one while it still signs (left
 * out when it cannot be read). Null when the current one cannot be read (JWT_SECRET changed since).
 */
export async function signingSecrets(jwtSecret: string, r: WebhookRow, now = nowIso()): Promise<string[] | null> {
  const open = (sealed: string) => decryptText(jwtSecret, SECRET_PURPOSE, sealed).catch(() => null);
  const current = await open(r.secret);
  if (current === null) return null;
  const previous = r.previousSecret && r.previousUntil && r.previousUntil > now ? await open(r.previousSecret) : null;
  return previous === null ? [current] : [current, previous];
}

const listenerRows = (db: Database, id: string, names: string[]) =>
  db
    .insert(eventListeners)
    .values(names.map((event) => ({ event, source: listenerSource(id) })))
    .onConflictDoNothing();

const removeListeners = (db: Database, id: string) =>
  db.delete(eventListeners).where(eq(eventListeners.source, listenerSource(id)));

/** Creates a webhook and its listener rows in one batch; the secret is returned this once. */
export async function createWebhook(
  db: Database,
  jwtSecret: string,
  input: { url: string; events: string[]; createdBy: string | null },
  audit: (id: string) => AuditOf,
): Promise<{ webhook: Webhook; secret: string }> {
  const secret = newSecret();
  const id = newId();
  const row: WebhookRow = {
    id,
    url: input.url,
    events: JSON.stringify(input.events),
    secret: await seal(jwtSecret, secret),
    previousSecret: null,
    previousUntil: null,
    enabled: true,
    failingSince: null,
    disabledAt: null,
    createdBy: input.createdBy,
    createdAt: nowIso(),
  };
  await db.batch([db.insert(webhooks).values(row), audit(id)(WROTE), listenerRows(db, id, input.events)]);
  return { webhook: toWebhook(row), secret };
}

const IdCursor = v.strictObject({ i: v.pipe(v.string(), v.maxLength(64)) });

/** Webhooks, newest first (UUIDv7 ids sort by creation). */
export async function listWebhooks(
  db: Database,
  o: { limit: number; cursor?: string | undefined },
): Promise<{ items: Webhook[]; nextCursor: string | null }> {
  const after = o.cursor ? decodeCursor(o.cursor, IdCursor).i : null;
  const rows = await db
    .select()
    .from(webhooks)
    .where(after ? lt(webhooks.id, after) : undefined)
    .orderBy(desc(webhooks.id))
    .limit(o.limit + 1);
  const page = rows.slice(0, o.limit);
  const last = page.at(-1);
  return {
    items: page.map(toWebhook),
    nextCursor: rows.length > o.limit && last ? encodeCursor({ i: last.id }) : null,
  };
}

/** The stored row of a webhook (sealed secrets included), for the delivery. */
export async function webhookRow(db: Database, id: string): Promise<WebhookRow | null> {
  const [row] = await db.select().from(webhooks).where(eq(webhooks.id, id));
  return row ?? null;
}

export async function getWebhook(db: Database, id: string): Promise<Webhook | null> {
  const row = await webhookRow(db, id);
  return row ? toWebhook(row) : null;
}

/** Deletes a webhook, its listener rows and its deliveries in one batch; false when there was none. */
export async function deleteWebhook(db: Database, id: string, audit: AuditOf): Promise<boolean> {
  const [gone] = await db.batch([
    db.delete(webhooks).where(eq(webhooks.id, id)).returning({ id: webhooks.id }),
    audit(WROTE),
    removeListeners(db, id),
    db.delete(eventRuns).where(eq(eventRuns.target, id)),
  ]);
  return gone.length > 0;
}

/**
 * A new signing secret; the current one moves to `previous_secret` and keeps signing (a second `v1=`)
 * until `previousUntil`, so receivers can switch without losing a delivery. Null when there is no such webhook.
 */
export async function rotateWebhookSecret(
  db: Database,
  jwtSecret: string,
  id: string,
  audit: AuditOf,
): Promise<{ secret: string; previousUntil: string } | null> {
  const secret = newSecret();
  const previousUntil = nowIso(Date.now() + limits.webhookPreviousSecretSec * 1000);
  const [updated] = await db.batch([
    db
      .update(webhooks)
      // SQLite reads the old row on the right-hand side: the current secret becomes the previous one.
      .set({ previousSecret: sql`${webhooks.secret}`, previousUntil, secret: await seal(jwtSecret, secret) })
      .where(eq(webhooks.id, id))
      .returning({ id: webhooks.id }),
    audit(WROTE),
  ]);
  return updated.length > 0 ? { secret, previousUntil } : null;
}

/**
 * The statements that follow a webhook's disabling in its batch: no more listener rows, its waiting
 * deliveries parked; each only while the webhook is disabled (a no-op when it was not).
 */
function disableStatements(db: Database, id: string, now: string, error: string) {
  const isDisabled = sql`EXISTS (SELECT 1 FROM ${webhooks} WHERE ${webhooks.id} = ${id} AND ${webhooks.enabled} = 0)`;
  return [
    db.delete(eventListeners).where(and(eq(eventListeners.source, listenerSource(id)), isDisabled)),
    db
      .update(eventRuns)
      .set({ status: "parked", lastError: error, finishedAt: now })
      .where(and(eq(eventRuns.target, id), eq(eventRuns.status, "pending"), isDisabled)),
  ] as const;
}

/**
 * Enables a webhook (listener rows back, its failure clock reset) or disables it (listener rows gone,
 * waiting deliveries parked); null when there is no such webhook.
 */
export async function setWebhookEnabled(
  db: Database,
  id: string,
  enabled: boolean,
  audit: AuditOf,
): Promise<Webhook | null> {
  const now = nowIso();
  if (enabled) {
    const [updated] = await db.batch([
      db
        .update(webhooks)
        .set({ enabled: true, disabledAt: null, failingSince: null })
        .where(and(eq(webhooks.id, id), eq(webhooks.enabled, false)))
        .returning(),
      audit(WROTE),
      db
        .insert(eventListeners)
        .select(
          sql`SELECT value, ${listenerSource(id)} FROM ${webhooks}, json_each(${webhooks.events})
              WHERE ${webhooks.id} = ${id} AND ${webhooks.enabled} = 1`,
        )
        .onConflictDoNothing(),
    ]);
    return updated[0] ? toWebhook(updated[0]) : getWebhook(db, id);
  }
  const [updated] = await db.batch([
    db
      .update(webhooks)
      .set({ enabled: false, disabledAt: now })
      .where(and(eq(webhooks.id, id), eq(webhooks.enabled, true)))
      .returning(),
    audit(WROTE),
    ...disableStatements(db, id, now, "webhook disabled by an admin"),
  ]);
  return updated[0] ? toWebhook(updated[0]) : getWebhook(db, id);
}

/** Delivery list cursors hold the last row's creation time and id. */
const DeliveryCursor = v.strictObject({
  at: v.pipe(v.string(), v.maxLength(64)),
  i: v.pipe(v.string(), v.maxLength(64)),
});

/** A webhook's deliveries, newest first. */
export async function listDeliveries(
  db: Database,
  webhookId: string,
  o: { limit: number; cursor?: string | undefined },
): Promise<{ items: Delivery[]; nextCursor: string | null }> {
  const after = o.cursor ? decodeCursor(o.cursor, DeliveryCursor) : null;
  const rows = await db
    .select({
      id: eventRuns.id,
      event: events.event,
      status: eventRuns.status,
      attempts: eventRuns.attempts,
      lastError: eventRuns.lastError,
      lastStatus: eventRuns.lastStatus,
      nextAttemptAt: eventRuns.nextAttemptAt,
      createdAt: eventRuns.createdAt,
    })
    .from(eventRuns)
    .innerJoin(events, eq(events.seq, eventRuns.seq))
    .where(
      and(
        eq(eventRuns.target, webhookId),
        after
          ? or(lt(eventRuns.createdAt, after.at), and(eq(eventRuns.createdAt, after.at), lt(eventRuns.id, after.i)))
          : undefined,
      ),
    )
    .orderBy(desc(eventRuns.createdAt), desc(eventRuns.id))
    .limit(o.limit + 1);
  const page = rows.slice(0, o.limit).map(
    (r): Delivery => ({
      ...r,
      nextAttemptAt: r.status === "done" || r.status === "parked" ? null : r.nextAttemptAt,
    }),
  );
  const last = page.at(-1);
  return {
    items: page,
    nextCursor: rows.length > o.limit && last ? encodeCursor({ at: last.createdAt, i: last.id }) : null,
  };
}

/**
 * Puts a delivery back to pending, due now (the caller sends its Queue job). `running`: an attempt is
 * under way; `missing`: no such delivery of this webhook.
 */
export async function redeliver(
  db: Database,
  webhookId: string,
  deliveryId: string,
  audit: AuditOf,
): Promise<"ok" | "running" | "missing"> {
  const [updated, , existing] = await db.batch([
    db
      .update(eventRuns)
      .set({ status: "pending", nextAttemptAt: nowIso(), leaseUntil: null, finishedAt: null })
      .where(and(eq(eventRuns.id, deliveryId), eq(eventRuns.target, webhookId), ne(eventRuns.status, "running")))
      .returning({ id: eventRuns.id }),
    audit(WROTE),
    db
      .select({ status: eventRuns.status })
      .from(eventRuns)
      .where(and(eq(eventRuns.id, deliveryId), eq(eventRuns.target, webhookId))),
  ]);
  if (updated.length > 0) return "ok";
  return existing.length > 0 ? "running" : "missing";
}

// --- what a delivery records ------------------------------------------------------------------

/** A delivery succeeded: the webhook is no longer failing. */
export async function markSucceeded(db: Database, id: string): Promise<void> {
  await db
    .update(webhooks)
    .set({ failingSince: null })
    .where(and(eq(webhooks.id, id), sql`${webhooks.failingSince} IS NOT NULL`));
}

/**
 * A delivery failed: the webhook is failing since now unless it already was. When it has failed for
 * `limits.webhookDisableSec`, it is disabled (listener rows removed, waiting deliveries parked) in one
 * batch; returns the webhook when this call disabled it (so the admins are told once).
 */
export async function markFailed(db: Database, id: string, now = new Date()): Promise<Webhook | null> {
  const at = now.toISOString();
  const limit = new Date(now.getTime() - limits.webhookDisableSec * 1000).toISOString();
  const [, disabled] = await db.batch([
    db
      .update(webhooks)
      .set({ failingSince: sql`coalesce(${webhooks.failingSince}, ${at})` })
      .where(eq(webhooks.id, id)),
    db
      .update(webhooks)
      .set({ enabled: false, disabledAt: at })
      .where(and(eq(webhooks.id, id), eq(webhooks.enabled, true), sql`${webhooks.failingSince} <= ${limit}`))
      .returning(),
    ...disableStatements(db, id, at, "webhook disabled after failing for 24 hours"),
  ]);
  return disabled[0] ? toWebhook(disabled[0]) : null;
}

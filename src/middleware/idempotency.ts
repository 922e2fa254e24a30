/**
 * `Idempotency-Key` for POST routes: a retry with the same key (per caller, kept
 * `limits.idempotencyTtlSec`) gets the first response again and runs nothing twice.
 *
 * Apply it after the auth middleware (keys are scoped to the principal) and before validation:
 * `app.post(path, optionalAuth, idempotency, validate(...), handler)`. The key is claimed with
 * an INSERT before the handler runs, so of two concurrent requests only one executes; the other
 * gets 409 `conflict` until the first is stored. The same key with another method, path or body
 * is also a 409 `conflict` (errors path `Idempotency-Key`). The request is recognised by an HMAC
 * keyed from `JWT_SECRET` (bodies may hold passwords), never a plain hash. 5xx answers and refusals before the
 * handler ran (400, 401, 403, 429) are not kept, so the retry runs again (for streamed uploads
 * only 2xx answers are kept); a claim whose request died is taken over after `limits.idempotencyLockSec`.
 * Anonymous callers have no scope to keep keys in, so the header is ignored for them.
 */
import { and, eq, lte } from "drizzle-orm";
import { createMiddleware } from "hono/factory";
import { limits } from "../config";
import type { Database } from "../db";
import { idempotencyKeys } from "../db/schema/collections";
import type { AppEnv } from "../env";
import { AppError } from "../errors";
import { b64url, hmac, purposeKey, randomToken } from "../lib/crypto";
import { nowIso } from "../lib/ids";
import type { DeletionHook, FeatureParts, ScheduledTask } from "../lifecycle";

const KEY_RE = new RegExp(`^[\\x21-\\x7e]{1,${limits.idempotencyKeyMax}}$`);

/** Response headers replayed with the stored body (the rest belong to each delivery). */
const KEPT_HEADERS = ["content-type", "etag", "location", "content-location", "last-modified"];

type Stored = typeof idempotencyKeys.$inferSelect;
type Claim =
  | { kind: "owned"; lockId: string }
  | { kind: "replay"; row: Stored }
  | { kind: "busy" }
  | { kind: "mismatch" };

const iso = (ms: number) => nowIso(ms);

/** Claims `key` for this request, or says why not. */
async function claim(db: Database, scope: string, key: string, requestHash: string, now: number): Promise<Claim> {
  const lockId = randomToken(16);
  const fresh = {
    requestHash,
    state: "in_flight" as const,
    status: null,
    headers: null,
    body: null,
    lockId,
    lockedAt: iso(now),
    expiresAt: iso(now + limits.idempotencyTtlSec * 1000),
  };
  const inserted = await db
    .insert(idempotencyKeys)
    .values({ scope, key, ...fresh })
    .onConflictDoNothing()
    .returning({ key: idempotencyKeys.key });
  if (inserted.length) return { kind: "owned", lockId };

  const byKey = and(eq(idempotencyKeys.scope, scope), eq(idempotencyKeys.key, key));
  const row = await db.select().from(idempotencyKeys).where(byKey).get();
  if (!row) return { kind: "busy" }; // released between our INSERT and SELECT; the client retries
  const expired = row.expiresAt <= iso(now);
  const stale = row.state === "in_flight" && row.lockedAt <= iso(now - limits.idempotencyLockSec * 1000);
  if (!expired) {
    if (row.requestHash !== requestHash) return { kind: "mismatch" };
    if (row.state === "done") return { kind: "replay", row };
    if (!stale) return { kind: "busy" };
  }
  // Take over an expired key or a dead claim; the lockId in the WHERE lets only one taker win.
  const taken = await db
    .update(idempotencyKeys)
    .set(expired ? fresh : { lockId, lockedAt: iso(now) })
    .where(and(byKey, eq(idempotencyKeys.lockId, row.lockId)))
    .returning({ key: idempotencyKeys.key });
  return taken.length ? { kind: "owned", lockId } : { kind: "busy" };
}

function replay(row: Stored): Response {
  const headers = new Headers(JSON.parse(row.headers ?? "{}") as Record<string, string>);
  headers.set("idempotent-replayed", "true");
  const status = row.status ?? 200;
  return new Response(status === 204 || status === 304 ? null : row.body, { status, headers });
}

/**
 * What identifies "the same request" under one key. JSON routes hash the body. Streaming uploads
 * can't (hashing would hold the whole upload), so they hash method, URL, content type and length.
 */
type RequestIdentity = "body" | "stream";

async function requestHash(
  secret: string,
  req: { method: string; path: string; url: string; text(): Promise<string>; header(n: string): string | undefined },
  identity: RequestIdentity,
) {
  const subject =
    identity === "body"
      ? // Hono caches the body text, so the validator after this middleware reads it again for free.
        `${req.method} ${req.path}\n${await req.text()}`
      : // The media type without parameters: HTTP clients pick a new multipart boundary for every retry.
        `${req.method} ${new URL(req.url).pathname}${new URL(req.url).search}\n` +
        `${(req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase()}\n` +
        (req.header("content-length") ?? "");
  // Keyed: bodies hold passwords (`/auth/password`, `/auth/link`), and a plain hash of them in D1
  // could be guessed offline at SHA-256 speed. Without JWT_SECRET the fingerprint says nothing.
  return b64url(await hmac(await purposeKey(secret, "idempotency-fingerprint"), subject));
}

/** Middleware: makes a POST idempotent under the `Idempotency-Key` header. */
export const idempotency = idempotent("body");

/**
 * The same for streaming uploads: the body is not read; a retry is recognised by URL, type and
 * length. Only 2xx answers are kept, so a retry after an upload that broke off runs again.
 */
export const idempotencyForStream = idempotent("stream");

function idempotent(identity: RequestIdentity) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const key = c.req.header("idempotency-key");
    const p = c.get("principal");
    if (key === undefined || !p) return next();
    if (!KEY_RE.test(key)) {
      throw new AppError(
        "validation_failed",
        `Idempotency-Key must be 1 to ${limits.idempotencyKeyMax} visible ASCII characters.`,
        {
          errors: [{ path: "Idempotency-Key", message: "invalid key" }],
        },
      );
    }
    const db = c.get("db");
    const scope = p.kind === "user" ? `user:${p.userId}` : "service";
    const got = await claim(db, scope, key, await requestHash(c.get("config").jwtSecret, c.req, identity), Date.now());
    if (got.kind === "replay") return replay(got.row);
    if (got.kind === "busy") {
      throw new AppError("conflict", "A request with this Idempotency-Key is still being processed; retry shortly.", {
        headers: { "retry-after": "1" },
      });
    }
    if (got.kind === "mismatch") {
      throw new AppError("conflict", "This Idempotency-Key was already used for a different request.", {
        errors: [{ path: "Idempotency-Key", message: "reused with a different method, path or body" }],
      });
    }

    const mine = and(
      eq(idempotencyKeys.scope, scope),
      eq(idempotencyKeys.key, key),
      eq(idempotencyKeys.lockId, got.lockId),
    );
    let kept = false;
    try {
      await next();
      const res = c.res;
      // A streamed body is not part of the request's identity, so a 4xx caused by its bytes (cut off
      // midway, wrong signature, too long) says nothing about the retry: only successes are kept.
      // Otherwise the outcome is kept, except refusals made before anything ran (invalid input,
      // auth, rate limit), so a corrected retry with the same key runs.
      const refusedBeforeRunning = res.status === 400 || res.status === 401 || res.status === 403 || res.status === 429;
      if (identity === "stream" ? res.status < 300 : res.status < 500 && !refusedBeforeRunning) {
        const body = await res.clone().text();
        if (new TextEncoder().encode(body).byteLength <= limits.idempotencyBodyMaxBytes) {
          const headers: Record<string, string> = {};
          for (const h of KEPT_HEADERS) {
            const value = res.headers.get(h);
            if (value !== null) headers[h] = value;
          }
          await db
            .update(idempotencyKeys)
            .set({ state: "done", status: res.status, headers: JSON.stringify(headers), body })
            .where(mine);
          kept = true;
        }
      }
    } finally {
      if (!kept) await db.delete(idempotencyKeys).where(mine);
    }
  });
}

/** Cron task (src/scheduled.ts): drops keys past their retention. */
export const idempotencyCleanup: ScheduledTask = async (_env, db, now) => {
  await db.delete(idempotencyKeys).where(lte(idempotencyKeys.expiresAt, now.toISOString()));
};

/** Account deletion: stored responses hold the user's data. */
const idempotencyDeletionHook: DeletionHook = async ({ db, userId }) => ({
  statements: [db.delete(idempotencyKeys).where(eq(idempotencyKeys.scope, `user:${userId}`))],
});

export const idempotencyParts: FeatureParts = {
  deletionHooks: [idempotencyDeletionHook],
  cleanupTasks: [idempotencyCleanup],
};

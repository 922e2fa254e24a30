/**
 * The revocation list: a disabled or deleted user's access tokens stop working on every route
 * within a minute, with no D1 query per request. Each isolate keeps the recent revocations in
 * memory, reads them again in the background once its copy is 30 s old and before answering once
 * it is 60 s old; revocations it writes itself apply at once. See docs/security.md ("Ending access").
 */
import { eq, gt, lte, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { limits } from "../../config";
import type { Database } from "../../db";
import { tokenRevocations } from "../../db/schema";
import { AppError } from "../../errors";
import type { ScheduledTask } from "../../lifecycle";
import { userExistsSql } from "./for-features";

/** Past this age an isolate's copy is read again in the background… */
const REFRESH_MS = 30_000;
/** …and past this one, before the request is answered. */
const MAX_AGE_MS = 60_000;

type Reason = "disabled" | "ended";
interface Revocation {
  at: number;
  reason: Reason;
}

const nowSec = () => Math.floor(Date.now() / 1000);

/** This isolate's copy: user id → its revocation, and when the copy was read. */
let known = new Map<string, Revocation>();
let readAt = Number.NEGATIVE_INFINITY;
let reading: Promise<void> | null = null;
/** What this isolate wrote since its last read (a replica may not show it yet). */
const written = new Map<string, Revocation>();

async function read(db: Database): Promise<void> {
  const since = nowSec() - limits.accessTokenTtlSec;
  const rows = await db
    .select({ userId: tokenRevocations.userId, at: tokenRevocations.revokedAt, reason: tokenRevocations.reason })
    .from(tokenRevocations)
    .where(gt(tokenRevocations.revokedAt, since));
  const next = new Map<string, Revocation>(
    rows.map((r) => [r.userId, { at: r.at, reason: r.reason === "disabled" ? "disabled" : "ended" }]),
  );
  for (const [id, mine] of written) {
    if (mine.at <= since) written.delete(id);
    else if ((next.get(id)?.at ?? 0) <= mine.at) next.set(id, mine);
  }
  known = next;
  readAt = Date.now();
}

function refresh(db: Database): Promise<void> {
  reading ??= read(db).finally(() => {
    reading = null;
  });
  return reading;
}

/**
 * Refuses a user whose tokens were revoked at or after `iat` (the token's issue time, epoch
 * seconds): 403 `account_disabled` for a disabled account, else 401 `unauthorized`.
 */
export async function assertNotRevoked(
  db: Database,
  userId: string,
  iat: number,
  waitUntil: (p: Promise<unknown>) => void,
): Promise<void> {
  const age = Date.now() - readAt;
  if (age > MAX_AGE_MS) await refresh(db);
  else if (age > REFRESH_MS) {
    waitUntil(refresh(db).catch((e: unknown) => console.error("revocation list read failed:", (e as Error).message)));
  }
  const hit = known.get(userId);
  if (!hit || iat > hit.at) return;
  if (hit.reason === "disabled") throw new AppError("account_disabled", "This account is disabled.");
  throw new AppError("unauthorized", "This account's sessions have ended; sign in again.");
}

function remember(userId: string, revocation: Revocation) {
  written.set(userId, revocation);
  known.set(userId, revocation);
}

/**
 * The statement that revokes every access token a user holds now (`disabled`: the account was
 * disabled; `ended`: deleted, or all its sessions ended). Batch it with the action that causes it;
 * once the batch committed, `applied()` makes this isolate refuse the tokens at once.
 */
export function revokeUserTokens(
  db: Database,
  userId: string,
  reason: Reason,
): { statement: BatchItem<"sqlite">; applied: () => void } {
  const at = nowSec();
  // Only while the user exists: a refused action (no such user) writes nothing.
  const statement = db
    .insert(tokenRevocations)
    .select(sql`SELECT ${userId}, ${at}, ${reason} WHERE ${userExistsSql(userId)}`)
    .onConflictDoUpdate({
      target: tokenRevocations.userId,
      set: { revokedAt: sql`excluded.revoked_at`, reason: sql`excluded.reason` },
    });
  return { statement, applied: () => remember(userId, { at, reason }) };
}

/** Enabling an account again: its old tokens stay refused, now as ended sessions. */
export function unmarkDisabled(db: Database, userId: string): { statement: BatchItem<"sqlite">; applied: () => void } {
  return {
    statement: db.update(tokenRevocations).set({ reason: "ended" }).where(eq(tokenRevocations.userId, userId)),
    applied: () => {
      const mine = known.get(userId);
      if (mine) remember(userId, { ...mine, reason: "ended" });
    },
  };
}

/** Cron: revocations older than an access token's lifetime protect nothing any more. */
export const revocationCleanup: ScheduledTask = async (_env, db, now) => {
  const before = Math.floor(now.getTime() / 1000) - limits.accessTokenTtlSec;
  await db.delete(tokenRevocations).where(lte(tokenRevocations.revokedAt, before));
};

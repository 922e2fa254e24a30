/**
 * Extension points of the account: every feature that stores something a user owns adds its
 * deletion hook here, so `DELETE /v1/me` removes everything (sessions and identities go by
 * foreign-key cascade from `users`).
 */
import { eq } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { type Database, runBatch } from "../../db";
import { users } from "../../db/schema";
import { filesDeletionHook, isOwnFile } from "../files/service";
import { uploadsDeletionHook } from "../uploads/service";
import { deleteUserRecords } from "../collections/service";
import { idempotencyDeletionHook } from "../../middleware/idempotency";
import { chatDeletionHook } from "../chat/deletion";

export interface DeletionContext {
  env: Env;
  db: Database;
  userId: string;
}

export interface DeletionPlan {
  /** D1 statements run in the same atomic batch that deletes the user row. */
  statements?: BatchItem<"sqlite">[];
  /** Work after the batch committed (R2 objects, Durable Objects); may run in waitUntil. */
  after?: () => Promise<void>;
}

/** A feature's part of account deletion. Runs before the batch, so it can read what it must clean up. */
export type DeletionHook = (ctx: DeletionContext) => Promise<DeletionPlan>;

/** Checks that `fileId` is a file the user may use as avatar (their own). */
export type AvatarCheck = (db: Database, userId: string, fileId: string) => Promise<boolean>;

/** Every feature's deletion hook, in order. */
export const deletionHooks: DeletionHook[] = [chatDeletionHook, deleteUserRecords, idempotencyDeletionHook, filesDeletionHook, uploadsDeletionHook];

/** How avatar file ids are checked; set by the files feature. */
export const avatarCheck: { check: AvatarCheck | null } = { check: isOwnFile };

/**
 * Deletes an account and everything it owns: every hook's statements, `extra` (e.g. the admin's
 * audit row) and the user row in one atomic batch. Returns false when there was no such user
 * (nothing was written), else the work to run after the batch (in `waitUntil`).
 */
export async function deleteAccount(env: Env, db: Database, userId: string, extra: BatchItem<"sqlite">[] = []): Promise<{ deleted: false } | { deleted: true; after: () => Promise<void> }> {
  const ctx = { env, db, userId };
  const plans: DeletionPlan[] = [];
  for (const hook of deletionHooks) plans.push(await hook(ctx));
  const res = await runBatch(db, [
    ...plans.flatMap((p) => p.statements ?? []),
    ...extra,
    db.delete(users).where(eq(users.id, userId)).returning({ id: users.id }),
  ]);
  if ((res.at(-1) as { id: string }[]).length === 0) return { deleted: false };
  const after = plans.flatMap((p) => (p.after ? [p.after] : []));
  return {
    deleted: true,
    after: async () => {
      await Promise.all(after.map((f) => f().catch((e: unknown) => console.error("account deletion cleanup failed:", (e as Error).message))));
    },
  };
}

/**
 * Extension points of the account: every feature that stores something a user owns adds its
 * deletion hook here, so `DELETE /v1/me` removes everything (sessions and identities go by
 * foreign-key cascade from `users`).
 */
import type { BatchItem } from "drizzle-orm/batch";
import type { Database } from "../../db";
import { filesDeletionHook, isOwnFile } from "../files/service";
import { uploadsDeletionHook } from "../uploads/service";
import { deleteUserRecords } from "../collections/service";
import { idempotencyDeletionHook } from "../../middleware/idempotency";
import { chatDeletionHook } from "../chat/deletion";
import { blocksDeletionHook } from "../blocks/service";

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
export const deletionHooks: DeletionHook[] = [chatDeletionHook, deleteUserRecords, idempotencyDeletionHook, filesDeletionHook, uploadsDeletionHook, blocksDeletionHook];

/** How avatar file ids are checked; set by the files feature. */
export const avatarCheck: { check: AvatarCheck | null } = { check: isOwnFile };

/** The account as a whole: deleting it and everything every feature keeps for it. */
import { type Database, runBatch } from "../../db";
import { AppError } from "../../errors";
import type { Lifecycle } from "../../lifecycle";
import { deleteUserStatement } from "../auth";

/**
 * Deletes the account and everything it owns, in one D1 batch: each feature's deletion hook reads
 * what it must clean up, its statements join the batch that deletes the user row, and its
 * after-work (R2 objects, Durable Objects) runs once the batch committed, through `waitUntil`.
 * Throws `unauthorized` when the account is already gone.
 */
export async function deleteAccount(lifecycle: Lifecycle, env: Env, db: Database, userId: string, waitUntil: (p: Promise<unknown>) => void): Promise<void> {
  const ctx = { env, db, userId };
  const plans = [];
  for (const hook of lifecycle.deletionHooks) plans.push(await hook(ctx));
  const res = await runBatch(db, [...plans.flatMap((p) => p.statements ?? []), deleteUserStatement(db, userId)]);
  const deleted = res.at(-1) as { id: string }[];
  if (deleted.length === 0) throw new AppError("unauthorized", "This account no longer exists.");
  const after = plans.flatMap((p) => (p.after ? [p.after] : []));
  if (after.length) {
    waitUntil(Promise.all(after.map((f) => f().catch((e: unknown) => console.error("account deletion cleanup failed:", (e as Error).message)))));
  }
}

/** The account as a whole: deleting it and everything every feature keeps for it. */
import type { BatchItem } from "drizzle-orm/batch";
import { type Database, runBatch } from "../../db";
import type { DeletionPlan, Lifecycle } from "../../lifecycle";
import { deleteUserStatement, revokeUserTokens } from "../auth";

/**
 * Deletes the account and everything it owns, in one D1 batch: each feature's deletion hook reads
 * what it must clean up, its statements, `extra` (e.g. the admin's audit row) and the user row go
 * in one atomic batch. Returns `{ deleted: false }` when there was no such user (nothing was
 * written), else the after-work (R2 objects, Durable Objects) to run once the batch committed,
 * in `waitUntil`.
 */
export async function deleteAccount(
  lifecycle: Lifecycle,
  env: Env,
  db: Database,
  userId: string,
  extra: BatchItem<"sqlite">[] = [],
): Promise<{ deleted: false } | { deleted: true; after: () => Promise<void> }> {
  const ctx = { env, db, userId, lifecycle };
  const plans: DeletionPlan[] = [];
  for (const hook of lifecycle.deletionHooks) plans.push(await hook(ctx));
  const revoked = revokeUserTokens(db, userId, "ended");
  const res = await runBatch(db, [
    ...plans.flatMap((p) => p.statements ?? []),
    ...extra,
    revoked.statement,
    deleteUserStatement(db, userId),
  ]);
  const deleted = res.at(-1) as { id: string }[];
  if (deleted.length === 0) return { deleted: false };
  revoked.applied();
  const after = plans.flatMap((p) => (p.after ? [p.after] : []));
  return {
    deleted: true,
    after: async () => {
      await Promise.all(
        after.map((f) =>
          f().catch((e: unknown) => console.error("account deletion cleanup failed:", (e as Error).message)),
        ),
      );
    },
  };
}

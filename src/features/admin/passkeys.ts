/** Admins and a user's passkeys: removing one, with its audit row in the same batch. */
import { sql } from "drizzle-orm";
import { type Database, runBatch } from "../../db";
import { AppError } from "../../errors";
import { removePasskeyStatement } from "../auth";
import { type Actor, auditStatement } from "./service";

/** Removes one of `userId`'s passkeys; the audit row is written only when a passkey was removed. */
export async function removeUserPasskey(db: Database, actor: Actor, userId: string, passkeyId: string) {
  const [gone] = (await runBatch(db, [
    removePasskeyStatement(db, userId, passkeyId),
    auditStatement(
      db,
      actor,
      { action: "user.passkey_remove", target: `user:${userId}`, detail: { passkeyId } },
      sql`changes() > 0`,
    ),
  ])) as [{ id: string }[]];
  if (gone.length === 0) throw new AppError("not_found", "No such passkey.");
}

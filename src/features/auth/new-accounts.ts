/**
 * What every way of making an account shares with the app's logic: the `users` before create hook
 * runs first (it may refuse the sign-up), and the INSERT returns whether anyone listens to
 * `users.create` (an after hook such as the welcome mail, a webhook): only then is a drain queued.
 */
import type { Context } from "hono";
import type { Database } from "../../db";
import { users } from "../../db/schema";
import type { AppEnv } from "../../env";
import { listenedSql, runBefore, sendDrain } from "../logic";

export interface NewAccounts {
  /** Runs the app's before hook with what the account is made with (may throw its refusal). */
  before(data: { email: string | null; name: string | null; anonymous: boolean }): Promise<void>;
  /** Told the new user's INSERT result (`newUserInsert`), after the batch committed. */
  created(inserted: unknown): void;
}

/** The INSERT of a new account's row, returning `listened`. */
export const newUserInsert = (db: Database, row: typeof users.$inferInsert) =>
  db
    .insert(users)
    .values(row)
    .returning({ listened: listenedSql(["users.create"]) });

/** The request's `NewAccounts`. */
export function newAccounts(c: Context<AppEnv>): NewAccounts {
  const waitUntil = (p: Promise<unknown>) => c.executionCtx.waitUntil(p);
  return {
    async before(data) {
      await runBefore("users", "create", { env: c.env, db: c.get("db"), waitUntil }, { kind: "anonymous" }, { data });
    },
    created(inserted) {
      if ((inserted as { listened: number | boolean }[])[0]?.listened) waitUntil(sendDrain(c.env));
    },
  };
}

/** Second factors: TOTP enrollments, their recovery codes, and sign-ins waiting for a second factor. */
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { users } from "./auth";

/**
 * A user's TOTP factor (at most one). `confirmedAt` null: a pending enrollment (a new one replaces
 * it). The secret is sealed with `encryptText`; `lastStep` is the time step of the last accepted
 * code, so a code is never accepted twice.
 */
export const mfaTotp = sqliteTable("mfa_totp", {
  userId: text("user_id")
    .primaryKey()
    .references(() => users.id, { onDelete: "cascade" }),
  secretSealed: text("secret_sealed").notNull(),
  lastStep: integer("last_step"),
  createdAt: text("created_at").notNull(),
  confirmedAt: text("confirmed_at"),
});

/** Single-use recovery codes (hash only): a used one is deleted, so the rows are the codes left. */
export const mfaRecoveryCodes = sqliteTable(
  "mfa_recovery_codes",
  {
    hash: text("hash").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
  },
  (t) => [index("mfa_recovery_codes_user_idx").on(t.userId)],
);

/**
 * A sign-in that proved the first factor and waits for the second (`mfaToken`, hash only): single
 * use, short-lived, dead after `limits.mfaMaxAttempts` wrong codes.
 */
export const mfaChallenges = sqliteTable(
  "mfa_challenges",
  {
    hash: text("hash").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    attempts: integer("attempts").notNull().default(0),
    expiresAt: text("expires_at").notNull(),
  },
  (t) => [index("mfa_challenges_user_idx").on(t.userId), index("mfa_challenges_expires_idx").on(t.expiresAt)],
);

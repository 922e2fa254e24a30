/** Passkeys (WebAuthn credentials) and the challenges of registrations and sign-ins under way. */
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { users } from "./auth";

/** A user's passkeys: the credential's id and COSE public key, its signature counter, a name the user chose. */
export const passkeys = sqliteTable(
  "passkeys",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    /** The authenticator's credential id, base64url: what an assertion names. */
    credentialId: text("credential_id").notNull(),
    /** The COSE_Key from the registration, base64url. */
    publicKey: text("public_key").notNull(),
    /** COSE algorithm: -7 (ES256) or -257 (RS256). */
    algorithm: integer("algorithm").notNull(),
    /** The last signature counter seen (0 for authenticators that keep none, such as synced passkeys). */
    counter: integer("counter").notNull().default(0),
    name: text("name").notNull(),
    /** The transports the authenticator reported (JSON array of strings), handed back in excludeCredentials. */
    transports: text("transports", { mode: "json" }).$type<string[]>(),
    createdAt: text("created_at").notNull(),
    lastUsedAt: text("last_used_at"),
  },
  (t) => [
    uniqueIndex("passkeys_credential_unique").on(t.credentialId),
    index("passkeys_user_created_idx").on(t.userId, t.createdAt),
  ],
);

/**
 * WebAuthn challenges handed out and not yet used: keyed by the challenge's SHA-256 (base64url), single use
 * (deleted when redeemed), `limits.passkeyChallengeTtlSec`. A registration's belongs to the user who asked.
 */
export const passkeyChallenges = sqliteTable(
  "passkey_challenges",
  {
    hash: text("hash").primaryKey(),
    kind: text("kind", { enum: ["register", "login"] }).notNull(),
    /** The signed-in user a registration is for; null for a sign-in. */
    userId: text("user_id").references(() => users.id, { onDelete: "cascade" }),
    expiresAt: text("expires_at").notNull(),
  },
  (t) => [index("passkey_challenges_expires_idx").on(t.expiresAt), index("passkey_challenges_user_idx").on(t.userId)],
);

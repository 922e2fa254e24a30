/** App integrity (src/features/app-check): challenges, attested App Attest keys, debug tokens, monitor counts. */
import { integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** A challenge handed out by `POST /v1/app-check/challenge`: used once, within its expiry (epoch ms). */
export const appCheckChallenges = sqliteTable("appcheck_challenges", {
  challenge: text("challenge").primaryKey(),
  expiresAt: integer("expires_at").notNull(),
});

/** An App Attest key that passed attestation: its public key (SPKI, base64url) and the last counter seen. */
export const appAttestKeys = sqliteTable("appcheck_attest_keys", {
  keyId: text("key_id").primaryKey(),
  appId: text("app_id").notNull(),
  publicKey: text("public_key").notNull(),
  counter: integer("counter").notNull(),
  /** `production` or `development` (the attestation's aaguid). */
  environment: text("environment").notNull(),
  createdAt: text("created_at").notNull(),
  lastUsedAt: text("last_used_at").notNull(),
});

/** Debug tokens made by admins for simulators and CI; only the SHA-256 of the secret is kept. */
export const appCheckDebugTokens = sqliteTable("appcheck_debug_tokens", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  tokenHash: text("token_hash").notNull().unique(),
  createdBy: text("created_by").notNull(),
  createdAt: text("created_at").notNull(),
  lastUsedAt: text("last_used_at"),
});

/**
 * What the guard saw, per UTC day, platform (`apple`, `android`, `web`, `debug`, `none`) and reason
 * (`ok`, `missing`, `invalid`, `expired`), in monitor and enforce modes. Written in coalesced flushes.
 */
export const appCheckCounts = sqliteTable(
  "appcheck_counts",
  {
    day: text("day").notNull(),
    platform: text("platform").notNull(),
    reason: text("reason").notNull(),
    count: integer("count").notNull(),
  },
  (t) => [primaryKey({ columns: [t.day, t.platform, t.reason] })],
);

/** Accounts and sessions. */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const users = sqliteTable(
  "users",
  {
    id: text("id").primaryKey(),
    /** Lowercased; null for guests and for ID-token accounts whose provider hid the address. */
    email: text("email"),
    emailVerified: integer("email_verified", { mode: "boolean" }).notNull().default(false),
    /** `pbkdf2-sha256$iterations$salt$hash`; null for guests and provider-only accounts. */
    passwordHash: text("password_hash"),
    name: text("name"),
    avatarFileId: text("avatar_file_id"),
    anonymous: integer("anonymous", { mode: "boolean" }).notNull().default(false),
    /** `admin` may use the admin API and the console (`npm run admin -- promote <email>` makes the first). */
    role: text("role", { enum: ["user", "admin"] })
      .notNull()
      .default("user"),
    /**
     * A disabled account cannot sign in or refresh (403 `account_disabled`); its sessions ended when
     * it was disabled.
     */
    disabled: integer("disabled", { mode: "boolean" }).notNull().default(false),
    /** The device's language (BCP 47, e.g. `fr-CA`), sent by the SDK: which mail templates the user gets. */
    locale: text("locale"),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [uniqueIndex("users_email_unique").on(t.email).where(sql`${t.email} IS NOT NULL`)],
);

/**
 * Sign-in identities linked to a user: `(provider, subject)` is the provider's stable user id. `provider` is
 * `apple`, `google`, `github`, a generic OpenID provider's configured name, or `email` (email codes: the
 * subject is the user id, since the address itself is matched through `users.email`).
 */
export const identities = sqliteTable(
  "identities",
  {
    provider: text("provider").notNull(),
    subject: text("subject").notNull(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    /** The provider's email at first sign-in, only if the provider verified it. */
    email: text("email"),
    createdAt: text("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.provider, t.subject] }), index("identities_user_idx").on(t.userId)],
);

/**
 * A login on one device. `refreshHash` is the hash of the one refresh token that is valid now;
 * rotation swaps it with a compare-and-set UPDATE. `rotatedAt` is when that happened: for
 * `limits.refreshGraceSec` after it, the token just rotated may be presented again (a lost answer)
 * and gets the same successor back.
 */
export const sessions = sqliteTable(
  "sessions",
  {
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    refreshHash: text("refresh_hash").notNull(),
    userAgent: text("user_agent"),
    createdAt: text("created_at").notNull(),
    lastUsedAt: text("last_used_at").notNull(),
    expiresAt: text("expires_at").notNull(),
    /** When `refreshHash` last replaced its predecessor; null until the first refresh. */
    rotatedAt: text("rotated_at"),
    /** Assurance level: `aal2` when the sign-in proved a second factor or a passkey. */
    aal: text("aal", { enum: ["aal1", "aal2"] })
      .notNull()
      .default("aal1"),
  },
  (t) => [index("sessions_user_idx").on(t.userId), uniqueIndex("sessions_refresh_unique").on(t.refreshHash)],
);

/**
 * Every refresh token ever issued for a live session (hash only). A token found here whose hash
 * is not the session's current `refreshHash` has been rotated: presenting it is reuse.
 */
export const refreshTokens = sqliteTable(
  "refresh_tokens",
  {
    hash: text("hash").primaryKey(),
    sessionId: text("session_id")
      .notNull()
      .references(() => sessions.id, { onDelete: "cascade" }),
    createdAt: text("created_at").notNull(),
  },
  (t) => [index("refresh_tokens_session_idx").on(t.sessionId)],
);

/** One-time tokens sent by mail (hash only). */
export const verificationTokens = sqliteTable(
  "verification_tokens",
  {
    hash: text("hash").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    purpose: text("purpose", { enum: ["password_reset", "email_verify"] }).notNull(),
    /** For email verification: the address being verified (so a later email change invalidates it). */
    email: text("email"),
    expiresAt: text("expires_at").notNull(),
  },
  (t) => [index("verification_tokens_user_idx").on(t.userId, t.purpose)],
);

/**
 * Sign-in codes by mail (`POST /v1/auth/otp`): one live code per address, whether or not an account has it.
 * Only hashes: the 6-digit code as an HMAC (keyed from JWT_SECRET, so a leaked table cannot be brute-forced
 * offline) and the magic link's token. Dies after `limits.otpMaxAttempts` wrong codes.
 */
export const otpCodes = sqliteTable(
  "otp_codes",
  {
    email: text("email").primaryKey(),
    codeHash: text("code_hash").notNull(),
    tokenHash: text("token_hash").notNull(),
    attempts: integer("attempts").notNull().default(0),
    expiresAt: text("expires_at").notNull(),
  },
  (t) => [uniqueIndex("otp_codes_token_unique").on(t.tokenHash), index("otp_codes_expires_idx").on(t.expiresAt)],
);

/**
 * Single-use WebSocket tickets (`POST /v1/auth/socket-ticket`), hash only, valid for
 * `limits.socketTicketTtlSec`: what a socket URL carries instead of the access token. A ticket
 * belongs to a session and goes with it (logout, revocation, account deletion).
 */
export const socketTickets = sqliteTable(
  "socket_tickets",
  {
    hash: text("hash").primaryKey(),
    /** Session of the access token that asked for it, whose user and flags it stands for. */
    sessionId: text("session_id")
      .notNull()
      .references(() => sessions.id, { onDelete: "cascade" }),
    userId: text("user_id").notNull(),
    anonymous: integer("anonymous", { mode: "boolean" }).notNull(),
    expiresAt: text("expires_at").notNull(),
  },
  (t) => [index("socket_tickets_session_idx").on(t.sessionId), index("socket_tickets_expires_idx").on(t.expiresAt)],
);

/** Local-development mail outbox: where mail lands when no provider is configured. */
export const devOutbox = sqliteTable("dev_outbox", {
  id: text("id").primaryKey(),
  to: text("to").notNull(),
  subject: text("subject").notNull(),
  text: text("text").notNull(),
  createdAt: text("created_at").notNull(),
});

/**
 * Users whose access tokens stop working before they expire (disabled, deleted, or every session
 * ended by an admin): tokens issued at or before `revokedAt` (epoch seconds) are refused. No
 * foreign key, so the row outlives a deleted user; rows older than an access token's lifetime are
 * dropped by the cron.
 */
export const tokenRevocations = sqliteTable(
  "token_revocations",
  {
    userId: text("user_id").primaryKey(),
    revokedAt: integer("revoked_at").notNull(),
    /** `disabled` (answered 403 `account_disabled`) or `ended` (401 `unauthorized`). */
    reason: text("reason").notNull(),
  },
  (t) => [index("token_revocations_revoked_at").on(t.revokedAt)],
);

/**
 * OAuth / OpenID sign-ins under way (`GET /v1/auth/oauth/:provider/start` until the callback): keyed by
 * the hash of the `state` sent to the provider; what the client asked for (its redirect URI, PKCE
 * challenge and own state), the nonce and our own PKCE verifier for the provider. Lives 10 minutes, once.
 */
export const oauthFlows = sqliteTable(
  "oauth_flows",
  {
    stateHash: text("state_hash").primaryKey(),
    provider: text("provider").notNull(),
    redirectUri: text("redirect_uri").notNull(),
    codeChallenge: text("code_challenge").notNull(),
    clientState: text("client_state").notNull(),
    nonce: text("nonce").notNull(),
    providerVerifier: text("provider_verifier").notNull(),
    expiresAt: text("expires_at").notNull(),
  },
  (t) => [index("oauth_flows_expires_idx").on(t.expiresAt)],
);

/**
 * The one-time codes the callback hands the client (`?code=`), hash only, with the identity the provider
 * vouched for (JSON) and the client's PKCE challenge: `POST /v1/auth/oauth/exchange` turns one into a
 * session, once, within `limits.oauthCodeTtlSec`.
 */
export const oauthCodes = sqliteTable(
  "oauth_codes",
  {
    codeHash: text("code_hash").primaryKey(),
    identity: text("identity", { mode: "json" }).notNull(),
    codeChallenge: text("code_challenge").notNull(),
    expiresAt: text("expires_at").notNull(),
  },
  (t) => [index("oauth_codes_expires_idx").on(t.expiresAt)],
);

/**
 * Sign in with Apple refresh tokens (from an `authorizationCode`), sealed with AES-GCM (key derived from
 * JWT_SECRET): revoked at Apple when the account is deleted (App Store rule 5.1.1(v)).
 */
export const appleTokens = sqliteTable("apple_tokens", {
  userId: text("user_id")
    .primaryKey()
    .references(() => users.id, { onDelete: "cascade" }),
  /** The Apple client id (bundle id or Services ID) the token was issued to: revocation needs it. */
  clientId: text("client_id").notNull(),
  sealedRefreshToken: text("sealed_refresh_token").notNull(),
  updatedAt: text("updated_at").notNull(),
});

/**
 * An Apple refresh token to revoke: written in the account deletion's batch (so a lost Queue message
 * cannot lose it), deleted once Apple took the revocation or refused it for good. The Queue job runs it
 * at once; the cron sends again what is still here at `next_attempt_at` (backoff).
 */
export const appleRevocations = sqliteTable(
  "apple_revocations",
  {
    id: text("id").primaryKey(),
    clientId: text("client_id").notNull(),
    sealedRefreshToken: text("sealed_refresh_token").notNull(),
    /** Sends made by the cron so far (the first, queued by the deletion, is not counted). */
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: text("next_attempt_at").notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [index("apple_revocations_next_idx").on(t.nextAttemptAt)],
);

/** The one Hono context type: bindings from `wrangler types`, plus what middleware puts on the context (`c.get`). */
import type { Config } from "./config";
import type { Database } from "./db";
import type { Lifecycle } from "./lifecycle";

/** Who is calling. `service` is the server-to-server service key, which bypasses collection rules. */
/** A session's assurance level: `aal2` once a second factor (or a passkey) was proven at sign-in. */
export type Aal = "aal1" | "aal2";

/** `aal` is set only on `aal2` sessions' tokens (absent: `aal1`). */
export type Principal =
  | { kind: "user"; userId: string; sessionId: string; anonymous: boolean; aal?: Aal }
  | { kind: "service" };

export interface AppEnv {
  Bindings: Env;
  Variables: {
    /** Made by the server for every request (src/middleware/request-id.ts). */
    requestId: string;
    /** The client's own `X-Request-Id`, when it sent a valid one (kept for the audit log). */
    clientRequestId: string | null;
    config: Config;
    db: Database;
    /** Every feature's lifecycle parts (deletion hooks, socket closers), assembled at the root. */
    lifecycle: Lifecycle;
    /** The request's D1 session (read replicas); its bookmark is returned as `Outpost-Bookmark`. */
    d1: D1DatabaseSession;
    /** Set by `optionalAuth`/`requireAuth`; null for anonymous callers. */
    principal: Principal | null;
  };
}

/**
 * What a helper needs of a context to read its variables: `c.get(key)`. Read variables with
 * `c.get`, not `c.var`: Hono's `c.var` builds a new object of every variable on each access.
 */
export interface Vars<V = AppEnv["Variables"]> {
  get<K extends keyof V>(key: K): V[K];
}

declare global {
  /** Optional secrets (set with `wrangler secret put`); `wrangler types` only sees the ones in .dev.vars. */
  interface Env {
    /** "true": admins need a second factor and an aal2 session for the admin API and the console. */
    CONSOLE_REQUIRE_MFA?: string;
    MAIL_API_KEY?: string;
    FCM_SERVICE_ACCOUNT?: string;
    APNS_KEY_P8?: string;
    APNS_KEY_ID?: string;
    APNS_TEAM_ID?: string;
    EXPO_ACCESS_TOKEN?: string;
    PLAY_INTEGRITY_DECRYPTION_KEY?: string;
    PLAY_INTEGRITY_VERIFICATION_KEY?: string;
    TURNSTILE_SECRET?: string;
    /** OAuth client secrets, JSON `{ "<provider name>": "<secret>" }` (over `clientSecret` in OAUTH_PROVIDERS). */
    OAUTH_CLIENT_SECRETS?: string;
    /** Sign in with Apple's key (.p8, ES256), its id and the team id: client secrets for Apple's token endpoint. */
    APPLE_KEY_P8?: string;
    APPLE_KEY_ID?: string;
    APPLE_TEAM_ID?: string;
  }
}

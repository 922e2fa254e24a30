/**
 * Every limit, TTL and tunable of Outpost, plus the secrets, read from the Worker's bindings.
 * One place: features import `Config` from here, never read `env.X` for a tunable themselves.
 */
import { AppError } from "./errors";

/** Fixed limits. Change them here; nothing else hard-codes them. */
export const limits = {
  /** PBKDF2-SHA256 iterations. 100,000 is Cloudflare's production cap: more passes locally and fails deployed. */
  pbkdf2Iterations: 100_000,
  passwordMin: 8,
  passwordMax: 128,
  accessTokenTtlSec: 15 * 60,
  refreshTokenTtlSec: 60 * 24 * 60 * 60,
  passwordResetTtlSec: 60 * 60,
  emailVerifyTtlSec: 24 * 60 * 60,
  /** Clock skew tolerated when checking Apple/Google ID tokens. */
  idTokenClockToleranceSec: 60,
  listDefault: 50,
  listMax: 200,
  idempotencyTtlSec: 24 * 60 * 60,
  nameMax: 100,
  emailMax: 254,
} as const;

/** Runtime configuration derived from vars and secrets. */
export interface Config {
  environment: string;
  isProduction: boolean;
  appName: string;
  version: string;
  corsOrigins: string[];
  publicUrl: string | null;
  jwtSecret: string;
  serviceKey: string;
  mail: { providerUrl: string | null; apiKey: string | null; from: string };
  apple: { jwksUrl: string; audiences: string[] };
  google: { jwksUrl: string; audiences: string[] };
}

export const VERSION = "0.1.0";

const list = (s: string | undefined) =>
  (s ?? "")
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);

const cache = new WeakMap<object, Config>();

/**
 * Reads configuration once per `env` object. A missing or weak secret fails closed: the request
 * gets a 500 `misconfigured` and the log says which secret, never a built-in default key.
 */
export function getConfig(env: Env): Config {
  const hit = cache.get(env);
  if (hit) return hit;
  const secret = (name: "JWT_SECRET" | "SERVICE_KEY", min: number): string => {
    const v: string | undefined = env[name];
    if (!v || v.length < min) {
      console.error(`configuration error: secret ${name} is missing or shorter than ${min} characters`);
      throw new AppError("misconfigured", `The server is missing its ${name} secret.`);
    }
    return v;
  };
  const optional = (v: string | undefined) => (v && v.length > 0 ? v : null);
  const cfg: Config = {
    environment: env.ENVIRONMENT,
    isProduction: env.ENVIRONMENT === "production",
    appName: env.APP_NAME,
    version: VERSION,
    corsOrigins: list(env.CORS_ORIGINS),
    publicUrl: optional(env.PUBLIC_URL)?.replace(/\/+$/, "") ?? null,
    jwtSecret: secret("JWT_SECRET", 32),
    serviceKey: secret("SERVICE_KEY", 16),
    mail: {
      providerUrl: optional(env.MAIL_PROVIDER_URL),
      apiKey: optional(env.MAIL_API_KEY),
      from: env.MAIL_FROM,
    },
    apple: { jwksUrl: env.APPLE_JWKS_URL, audiences: list(env.APPLE_AUDIENCES) },
    google: { jwksUrl: env.GOOGLE_JWKS_URL, audiences: list(env.GOOGLE_AUDIENCES) },
  };
  cache.set(env, cfg);
  return cfg;
}

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
  /**
   * The refresh token just rotated may be presented again this long after its rotation (a lost answer),
   * and gets the same successor.
   */
  refreshGraceSec: 10,
  /** A WebSocket ticket (POST /v1/auth/socket-ticket) is valid this long, once. */
  socketTicketTtlSec: 30,
  /**
   * Socket tickets per user: REFRESH_LIMITER's budget (60) per this period, which must match its
   * `period` in wrangler.toml (the Retry-After of a refusal).
   */
  socketTicketsPeriodSec: 60,
  /**
   * Open sockets one user may hold on one Durable Object (a room, a live-data hub); a new one past it
   * closes their least recently heard-from socket there (4429). See docs/security.md, "Socket floods".
   */
  socketsPerUserPerObject: 8,
  passwordResetTtlSec: 60 * 60,
  emailVerifyTtlSec: 24 * 60 * 60,
  /** A team invitation's token is valid this long, once. */
  teamInvitationTtlSec: 7 * 24 * 60 * 60,
  /** Sign-in codes by mail: lifetime, wrong codes before one dies, the OTP_LIMITER period (wrangler.toml). */
  otpTtlSec: 10 * 60,
  otpMaxAttempts: 5,
  otpPeriodSec: 60,
  /** Second factors: an mfaToken's lifetime, wrong codes before it dies, recovery codes per enrollment. */
  mfaTokenTtlSec: 5 * 60,
  mfaMaxAttempts: 5,
  mfaRecoveryCodes: 10,
  /** OAuth: a sign-in under way at the provider lives this long; the code the client exchanges, this long. */
  oauthFlowTtlSec: 10 * 60,
  oauthCodeTtlSec: 60,
  /** Passkeys: a WebAuthn challenge (registration or sign-in) lives this long, once; passkeys one user may keep. */
  passkeyChallengeTtlSec: 5 * 60,
  passkeysPerUser: 20,
  /** Apple revocation after account deletion: the cron's first retry this long after the Queue's send, then doubling. */
  appleRevokeRetrySec: 10 * 60,
  /** ...and it gives up after this many retries (about four days with the one-day cap). */
  appleRevokeMaxAttempts: 10,
  /** A BCP 47 language tag a user's locale may be (`fr`, `pt-BR`, `zh-Hant-TW`). */
  localeMax: 35,
  /** Clock skew tolerated when checking Apple/Google ID tokens. */
  idTokenClockToleranceSec: 60,
  listDefault: 50,
  listMax: 200,
  idempotencyTtlSec: 24 * 60 * 60,
  /** Idempotency: a claimed key whose first request never finished can be taken over after this long. */
  idempotencyLockSec: 60,
  /** Idempotency: longest key, and largest response body stored for replay (larger ones are not kept). */
  idempotencyKeyMax: 255,
  idempotencyBodyMaxBytes: 256 * 1024,
  /** Collections: `where` size, values in one `$in`, values in the whole `where` (D1 binds at most 100 a statement). */
  collectionsWhereMaxBytes: 4096,
  collectionsInMax: 50,
  collectionsWhereParamsMax: 80,
  /** Collections: longest `$contains` needle and longest string compared in a `where`. */
  collectionsContainsMax: 200,
  collectionsFilterValueMax: 10_000,
  /** Collections: entity tags one If-Match may list (each is a bound parameter). */
  collectionsIfMatchMax: 10,
  /** Collections: operations in one `POST /v1/batch` (each is up to 4 statements of its one D1 batch). */
  batchMaxOperations: 50,
  /** Collections: tombstones are kept this long; a `since` older than a pruned one gets 410 `resync_required`. */
  changeLogRetentionDays: 30,
  /** Collections: the retention cron prunes tombstones in chunks of this many rows, at most this many chunks a run. */
  changeLogPruneChunk: 500,
  changeLogPruneChunksPerRun: 20,
  /** Live data: changes per replay page of a subscription (one D1 round trip each). */
  liveReplayPage: 200,
  /** Live data: hubs (Durable Objects) per collection listed across owners; subscribers are spread by user id. */
  liveHubShards: 4,
  /**
   * Live data: a subscription socket silent this long (no frame, no auto-answered ping) is closed (4408);
   * checked this often (no D1).
   */
  liveHeartbeatTimeoutSec: 90,
  liveHeartbeatCheckSec: 60,
  /** Live data: how often a hub with sockets runs its D1 backstops (ended sessions, notifications lost): one batch. */
  liveRecheckSec: 300,
  /** Live data: largest client frame the hub parses (clients only send pings). */
  liveFrameMaxBytes: 1024,
  nameMax: 100,
  emailMax: 254,
  /** Chat: longest message text (characters), client-chosen id length, room name length. */
  chatTextMax: 4000,
  chatClientIdMax: 64,
  chatRoomNameMax: 100,
  /** Chat: members named when a group is created, and members a group may hold. */
  chatCreateMembersMax: 100,
  chatGroupMembersMax: 1000,
  /**
   * Chat: room creations and member adds of one user share the ROOMS_LIMITER budget (wrangler.toml: 30 per 60 s);
   * its period, for Retry-After.
   */
  chatRoomWritesPeriodSec: 60,
  /** The app's own routes (`limitPerUser` in src/features/logic/app-kit.ts): ROOMS_LIMITER's period, per user and route. */
  appRoutesPeriodSec: 60,
  /**
   * Chat: distinct people one user may put into rooms per UTC day (someone added again that day counts once);
   * guests get fewer.
   */
  chatNewPeoplePerDay: 150,
  chatNewPeoplePerDayGuest: 20,
  /** Chat history pages (REST) and the page size used when replaying to a socket. */
  chatHistoryDefault: 50,
  chatHistoryMax: 200,
  chatReplayPage: 500,
  /**
   * `sync` frames per user in a room (all their sockets there share it): a bucket of this many, refilled
   * at this many per window (over it: `rate_limited`).
   */
  chatSyncBurst: 5,
  chatSyncWindowSec: 10,
  /** `typing` is forwarded at most once per user per this many seconds. */
  chatTypingIntervalSec: 3,
  /** A socket silent (no frame, no auto-answered ping) for this long is closed as dead. */
  chatHeartbeatTimeoutSec: 90,
  /** How often the room checks its sockets' heartbeats and sessions. */
  chatHeartbeatCheckSec: 30,
  /**
   * A room mirrors to D1 (room list, read positions) and queues push jobs in coalesced flushes: at
   * most one every chatMirrorFlushMs (one D1 round trip each), or at once when chatMirrorFlushMax
   * messages wait. A failed flush, or one an eviction interrupted, is retried after chatMirrorRetrySec.
   */
  chatMirrorFlushMs: 250,
  chatMirrorFlushMax: 200,
  chatMirrorRetrySec: 5,
  /** Largest WebSocket frame the room parses (a send with the longest text is far below it). */
  chatFrameMaxBytes: 32 * 1024,
  /** Push: devices kept per user (registering one more drops the least recently registered). */
  pushDevicesPerUser: 20,
  /**
   * Push: deliveries one queue job sends; larger fan-outs are split into several jobs. A consumer
   * invocation runs a whole batch (max_batch_size 25) on one subrequest budget (Paid: 1,000).
   */
  pushDevicesPerJob: 20,
  /** Push: tries per delivery (the first included) for transient provider errors (5xx, 429, network). */
  pushMaxAttempts: 5,
  /** Push: retry backoff, doubling from base per attempt, capped; a provider's Retry-After wins when longer. */
  pushRetryBaseSec: 10,
  pushRetryMaxSec: 900,
  /** Push: per-request timeout and parallel requests to a provider (Workers allow 6 open connections). */
  pushHttpTimeoutMs: 10_000,
  pushConcurrency: 6,
  /** Push: token length, admin push recipients, title/body lengths, data size (providers cap payloads at 4 KB). */
  pushTokenMax: 4096,
  pushAdminUsersMax: 1000,
  pushTitleMax: 200,
  pushBodyMax: 1000,
  pushDataMaxBytes: 2048,
  /** Push: a chat message's text is cut to this many characters in the notification. */
  pushChatBodyMax: 180,
  /** Push: Expo receipts (the APNs/FCM verdict behind each Expo ticket) are checked this long after sending. */
  pushExpoReceiptDelaySec: 15 * 60,
  /** Files: largest POST /v1/files body (the zone caps bodies at 100 MB on Free/Pro; larger media go through tus). */
  fileMaxBytes: 100 * 1024 * 1024,
  /**
   * Files: default storage quota per account (files plus the declared Upload-Length of unfinished
   * tus uploads). The var STORAGE_QUOTA_BYTES overrides it (see `Config.storageQuotaBytes`).
   */
  storageQuotaBytes: 1024 * 1024 * 1024,
  /** Files: longest stored file name (characters). */
  fileNameMax: 255,
  /** Files: a `pending` row (bytes still streaming) older than this is an abandoned upload; cleanup removes it. */
  filePendingGraceSec: 6 * 60 * 60,
  /** Signed content URLs: default and longest lifetime. */
  signedUrlDefaultSec: 15 * 60,
  signedUrlMaxSec: 7 * 24 * 60 * 60,
  /** tus: largest Upload-Length (5 GiB = 1,024 parts of 5 MiB; R2 allows 10,000 parts). */
  uploadMaxBytes: 5 * 1024 * 1024 * 1024,
  /** tus: R2 multipart part size. All parts but the last must be equal; 5 MiB is R2's minimum. */
  uploadPartBytes: 5 * 1024 * 1024,
  /** tus: an unfinished upload expires (and is aborted by cleanup) this long after creation. */
  uploadTtlSec: 24 * 60 * 60,
  /** Admin: longest `q` of a user search; a console sign-in lasts this long; rows per console page. */
  adminSearchMax: 100,
  adminSessionTtlSec: 8 * 60 * 60,
  adminPageSize: 25,
  /**
   * Images: largest original the Images binding is asked to read (thumbnails, dimensions, placeholder);
   * larger ones get none.
   */
  imageTransformMaxBytes: 70 * 1024 * 1024,
  /** Images: most pixels (width × height, read from the header before decoding) an image may have to be transformed. */
  imageMaxPixels: 40_000_000,
  /**
   * Images: leading bytes read to find the header's width and height; an image whose size is not in
   * them is not transformed.
   */
  imageHeaderMaxBytes: 512 * 1024,
  /** Images: long side of the rendition a ThumbHash placeholder is computed from (ThumbHash takes at most 100). */
  placeholderMaxPx: 100,
  /** Remote config: an isolate re-reads the config (one D1 round trip) when its copy is older than this. */
  configRecheckSec: 5,
  /** Config subscribe sockets are spread over this many Durable Objects (by user); a change notifies each. */
  configHubShards: 4,
  configHeartbeatTimeoutSec: 90,
  configHeartbeatCheckSec: 60,
  /** Short links per user: LINKS_LIMITER's budget per this period (its `period` in wrangler.toml). */
  linksPeriodSec: 60,
  /** Short link opens are counted in memory and written when an isolate holds this many, or... */
  linkClicksFlushEvery: 20,
  /** ...when its oldest unwritten click is this old (checked on each open). */
  linkClicksFlushSec: 10,
  /** App integrity: a challenge is valid this long, once; an `Outpost-App-Check` token this long. */
  appCheckChallengeTtlSec: 5 * 60,
  appCheckTokenTtlSec: 60 * 60,
  /** App integrity: a Play Integrity token older than this (its `timestampMillis`) is refused. */
  appCheckPlayMaxAgeSec: 5 * 60,
  /** App integrity: monitor counts go to D1 once this many wait in an isolate, or this long after the last flush. */
  appCheckFlushCount: 100,
  appCheckFlushSec: 30,
  /**
   * Webhooks: an attempt waits this long for an answer; a delivery is retried for `webhookRetrySec` after
   * it was made; a webhook failing for `webhookDisableSec` is disabled; a rotated-out secret still signs for
   * `webhookPreviousSecretSec`. Longest URL, most events per webhook.
   */
  webhookTimeoutMs: 10_000,
  webhookRetrySec: 24 * 60 * 60,
  webhookDisableSec: 24 * 60 * 60,
  webhookPreviousSecretSec: 24 * 60 * 60,
  webhookUrlMax: 2048,
  webhookEventsMax: 100,
} as const;

/**
 * Thumbnail presets for `GET /v1/files/:id/content?thumb=<name>`: the box an image is fitted into
 * (`scale-down`: keep the aspect, never enlarge; `cover`: fill the box, cropping the overflow).
 * Each preset is made at most once per output format (WebP, AVIF) and kept in R2, so a file's
 * renditions are bounded by this list. Names: lowercase letters and digits.
 */
export const thumbPresets = {
  sm: { width: 160, height: 160, fit: "scale-down" },
  md: { width: 640, height: 640, fit: "scale-down" },
  sq: { width: 160, height: 160, fit: "cover" },
} as const satisfies Record<string, { width: number; height: number; fit: "scale-down" | "cover" }>;

/** Runtime configuration derived from vars and secrets. */
export interface Config {
  environment: string;
  isProduction: boolean;
  appName: string;
  version: string;
  corsOrigins: string[];
  publicUrl: string | null;
  /** Bytes each account may store (STORAGE_QUOTA_BYTES, default `limits.storageQuotaBytes`). */
  storageQuotaBytes: number;
  /**
   * Whose image uploads lose their metadata (EXIF/GPS) on the way in: "public" (default) or "all".
   * Set by STRIP_IMAGE_METADATA.
   */
  stripImageMetadata: "public" | "all";
  /** CONSOLE_REQUIRE_MFA: admins need a second factor and an aal2 session (admin API and console). */
  consoleRequireMfa: boolean;
  jwtSecret: string;
  serviceKey: string;
  mail: { providerUrl: string | null; apiKey: string | null; from: string };
  apple: { jwksUrl: string; audiences: string[] };
  google: { jwksUrl: string; audiences: string[] };
  /**
   * Passkeys (WebAuthn): the relying party id (PASSKEY_RP_ID, default PUBLIC_URL's host; null: passkeys are
   * off), its display name (PASSKEY_RP_NAME, default APP_NAME) and the origins assertions may come from
   * (PASSKEY_ORIGINS: web origins and `android:apk-key-hash:<base64url SHA-256>`; default `https://<rpId>`).
   */
  passkeys: { rpId: string | null; rpName: string; origins: string[] };
  /** Push providers: base URLs (vars) and credentials (optional secrets; a provider without them is skipped). */
  /** Deep links: the apps the `.well-known` files name (APPLE_APP_IDS, ANDROID_APP_LINKS, APP_LINK_PATHS). */
  deepLinks: { appleAppIds: string[]; androidApps: { packageName: string; fingerprints: string[] }[]; paths: string[] };
  push: {
    fcm: { baseUrl: string; tokenUrl: string; serviceAccount: string | null };
    apns: { baseUrl: string; topic: string | null; keyP8: string | null; keyId: string | null; teamId: string | null };
    expo: { pushUrl: string; receiptsUrl: string; accessToken: string | null };
  };
  /** App integrity (APP_CHECK_* vars and the keys of docs/app-check.md). */
  appCheck: {
    mode: "off" | "monitor" | "enforce";
    guard: "auth" | "all";
    appleAppIds: string[];
    appleRoot: string;
    androidPackages: string[];
    androidCertDigests: string[];
    playDecryptionKey: string | null;
    playVerificationKey: string | null;
    turnstileUrl: string;
    turnstileSecret: string | null;
  };
}

const VERSION = "0.1.0";

const list = (s: string | undefined) =>
  (s ?? "")
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);

const cache = new WeakMap<object, Config>();

/** A var that must be one of `allowed` (empty: the first); anything else fails closed. */
function oneOf<T extends string>(name: string, raw: string | undefined, allowed: readonly T[]): T {
  const v = (raw ?? "").trim() || allowed[0]!;
  if ((allowed as readonly string[]).includes(v)) return v as T;
  console.error(`configuration error: ${name} must be one of ${allowed.join(", ")}`);
  throw new AppError("misconfigured", `The server's ${name} setting is not valid.`);
}

/** APPLE_APP_IDS (`TEAMID.bundle.id,…`), ANDROID_APP_LINKS (`package=SHA256:FINGERPRINT,…`), APP_LINK_PATHS. */
function deepLinks(env: Env): Config["deepLinks"] {
  const androidApps = new Map<string, string[]>();
  for (const entry of list(env.ANDROID_APP_LINKS)) {
    const [packageName, fingerprint] = entry.split("=").map((x) => x.trim());
    if (!packageName || !fingerprint || !/^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/.test(fingerprint)) {
      console.error("configuration error: ANDROID_APP_LINKS entries are package=SHA-256 fingerprint (AA:BB:…)");
      throw new AppError("misconfigured", "The server's ANDROID_APP_LINKS setting is not valid.");
    }
    androidApps.set(packageName, [...(androidApps.get(packageName) ?? []), fingerprint.toUpperCase()]);
  }
  // Short links open the app too: `/l/*` is always among the paths.
  const paths = [...new Set(["/l/*", ...list(env.APP_LINK_PATHS)])];
  return {
    appleAppIds: list(env.APPLE_APP_IDS),
    androidApps: [...androidApps].map(([packageName, fingerprints]) => ({ packageName, fingerprints })),
    paths,
  };
}

/** Passkeys' relying party from PASSKEY_RP_ID, PASSKEY_RP_NAME and PASSKEY_ORIGINS (see `Config.passkeys`). */
function passkeyConfig(env: Env): Config["passkeys"] {
  const publicHost = /^https?:\/\/([^/:?#]+)/i.exec(env.PUBLIC_URL ?? "")?.[1]?.toLowerCase();
  const rpId = (env.PASSKEY_RP_ID ?? "").trim().toLowerCase() || publicHost || null;
  const origins = list(env.PASSKEY_ORIGINS);
  for (const o of origins) {
    if (!/^(https:\/\/[a-z0-9.-]+(:\d+)?|http:\/\/localhost(:\d+)?|android:apk-key-hash:[A-Za-z0-9_-]{43})$/.test(o)) {
      console.error(`configuration error: PASSKEY_ORIGINS holds ${JSON.stringify(o)}, not an origin`);
      throw new AppError("misconfigured", "The server's PASSKEY_ORIGINS setting is not valid.");
    }
  }
  return {
    rpId,
    rpName: (env.PASSKEY_RP_NAME ?? "").trim() || env.APP_NAME,
    origins: origins.length > 0 ? origins : rpId ? [`https://${rpId}`] : [],
  };
}

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
  const bytes = (name: "STORAGE_QUOTA_BYTES", fallback: number): number => {
    const raw: string | undefined = env[name];
    if (raw === undefined || raw.trim() === "") return fallback;
    if (!/^\d{1,16}$/.test(raw.trim())) {
      console.error(`configuration error: ${name} must be a whole number of bytes`);
      throw new AppError("misconfigured", `The server's ${name} setting is not a number of bytes.`);
    }
    return Number(raw.trim());
  };
  const cfg: Config = {
    environment: env.ENVIRONMENT,
    isProduction: env.ENVIRONMENT === "production",
    appName: env.APP_NAME,
    version: VERSION,
    corsOrigins: list(env.CORS_ORIGINS),
    publicUrl: optional(env.PUBLIC_URL)?.replace(/\/+$/, "") ?? null,
    storageQuotaBytes: bytes("STORAGE_QUOTA_BYTES", limits.storageQuotaBytes),
    stripImageMetadata: oneOf("STRIP_IMAGE_METADATA", env.STRIP_IMAGE_METADATA, ["public", "all"]),
    consoleRequireMfa: oneOf("CONSOLE_REQUIRE_MFA", env.CONSOLE_REQUIRE_MFA, ["false", "true"]) === "true",
    jwtSecret: secret("JWT_SECRET", 32),
    serviceKey: secret("SERVICE_KEY", 16),
    mail: {
      providerUrl: optional(env.MAIL_PROVIDER_URL),
      apiKey: optional(env.MAIL_API_KEY),
      from: env.MAIL_FROM,
    },
    apple: { jwksUrl: env.APPLE_JWKS_URL, audiences: list(env.APPLE_AUDIENCES) },
    google: { jwksUrl: env.GOOGLE_JWKS_URL, audiences: list(env.GOOGLE_AUDIENCES) },
    passkeys: passkeyConfig(env),
    deepLinks: deepLinks(env),
    push: {
      fcm: {
        baseUrl: env.FCM_BASE_URL.replace(/\/+$/, ""),
        tokenUrl: env.FCM_TOKEN_URL,
        serviceAccount: optional(env.FCM_SERVICE_ACCOUNT),
      },
      apns: {
        baseUrl: env.APNS_BASE_URL.replace(/\/+$/, ""),
        topic: optional(env.APNS_TOPIC),
        keyP8: optional(env.APNS_KEY_P8),
        keyId: optional(env.APNS_KEY_ID),
        teamId: optional(env.APNS_TEAM_ID),
      },
      expo: {
        pushUrl: env.EXPO_PUSH_URL,
        receiptsUrl: env.EXPO_PUSH_URL.replace(/\/send\/?$/, "/getReceipts"),
        accessToken: optional(env.EXPO_ACCESS_TOKEN),
      },
    },
    appCheck: {
      mode: oneOf("APP_CHECK_MODE", env.APP_CHECK_MODE, ["off", "monitor", "enforce"]),
      guard: oneOf("APP_CHECK_GUARD", env.APP_CHECK_GUARD, ["auth", "all"]),
      appleAppIds: list(env.APPLE_APP_ATTEST_APP_IDS),
      appleRoot: env.APPLE_APP_ATTEST_ROOT,
      androidPackages: list(env.ANDROID_PACKAGE_NAMES),
      androidCertDigests: list(env.ANDROID_CERT_DIGESTS),
      playDecryptionKey: optional(env.PLAY_INTEGRITY_DECRYPTION_KEY),
      playVerificationKey: optional(env.PLAY_INTEGRITY_VERIFICATION_KEY),
      turnstileUrl: env.TURNSTILE_VERIFY_URL,
      turnstileSecret: optional(env.TURNSTILE_SECRET),
    },
  };
  cache.set(env, cfg);
  return cfg;
}

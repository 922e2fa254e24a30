/**
 * Apple Push Notification service, token-based auth: an ES256 JWT (`kid` = APNS_KEY_ID,
 * `iss` = APNS_TEAM_ID) signed with the .p8 key, reused for 50 minutes (Apple rejects tokens
 * older than an hour and throttles refreshing more often than every 20 minutes).
 * `POST {APNS_BASE_URL}/3/device/<token>` with `apns-topic` (the bundle id), `apns-push-type`
 * and `apns-priority`. Use https://api.sandbox.push.apple.com for development builds.
 *
 * Transport, honestly: the APNs provider API speaks HTTP/2 only. A Worker has no HTTP/2 client
 * of its own, only `fetch()`. What we rely on: in production, Workers' outbound `fetch()` to a
 * TLS origin offers h2 via ALPN and speaks HTTP/2 when the origin picks it. That is stated by
 * users (workerd#5266 / workers-sdk#10873) but not in Cloudflare's documentation, and one field
 * report (ai-ecoverse/slicc#2062, 2026) saw `fetch()` to api.push.apple.com hang until it timed
 * out. What we verified: only the request itself (JWT, headers, payload, answers) against the
 * local stand-in, which is plain HTTP/1.1, because local workerd fetches over HTTP/1.1 only.
 * Hence: every APNs request has a timeout and a hang counts as transient (retried, then
 * dropped, device kept); for production iOS delivery prefer FCM (which reaches iOS through
 * APNs with the key uploaded to Firebase) or Expo, and check direct APNs with one real device
 * on your account before relying on it.
 */
import { type Config, limits } from "../../../config";
import { importSigningKey, signJwt } from "../../../lib/jwt";
import {
  genericOutcome,
  isOutcome,
  jsonOrNull,
  mapLimit,
  type Outcome,
  type PushMessage,
  type PushSender,
  pushFetch,
  unconfigured,
} from "./types";

const JWT_REUSE_MS = 50 * 60 * 1000;
/**
 * One provider token per key, shared by concurrent sends (a promise while it is being signed):
 * Apple answers TooManyProviderTokenUpdates when a key's token changes more often than every 20
 * minutes, so a batch of first sends must not each sign their own.
 */
interface CachedJwt {
  promise: Promise<string>;
  jwt: string | undefined;
  issuedAt: number;
}
const jwtCache = new Map<string, CachedJwt>();

/** Forgets cached provider tokens (tests use it to see a fresh one). */
export function clearApnsTokenCache(): void {
  jwtCache.clear();
}

/** The cached provider token, or a new one when there is none, it aged out, or it is `rejected`. */
function providerToken(keyP8: string, keyId: string, teamId: string, rejected: string | undefined): Promise<string> {
  const id = `${teamId}|${keyId}`;
  const hit = jwtCache.get(id);
  // A token still being signed is newer than any rejected one.
  if (hit && Date.now() - hit.issuedAt < JWT_REUSE_MS && (rejected === undefined || hit.jwt !== rejected))
    return hit.promise;
  const issuedAt = Date.now();
  const entry: CachedJwt = {
    promise: importSigningKey(keyP8, "ES256").then((key) =>
      signJwt("ES256", key, { kid: keyId }, { iss: teamId, iat: Math.floor(issuedAt / 1000) }),
    ),
    jwt: undefined,
    issuedAt,
  };
  entry.promise.then(
    (jwt) => {
      entry.jwt = jwt;
    },
    () => {
      if (jwtCache.get(id) === entry) jwtCache.delete(id);
    },
  );
  jwtCache.set(id, entry);
  return entry.promise;
}

/** The APNs JSON payload: `aps` plus the custom data as top-level keys (where iOS apps read them). */
function apnsPayload(m: PushMessage) {
  return {
    aps: {
      alert: { title: m.title, body: m.body },
      sound: "default",
      ...(m.threadId ? { "thread-id": m.threadId } : {}),
    },
    ...m.data,
  };
}

export function apnsSender(cfg: Config["push"]["apns"]): PushSender {
  const { keyP8, keyId, teamId, topic } = cfg;
  if (!keyP8 || !keyId || !teamId)
    return unconfigured("apns", "APNS_KEY_P8, APNS_KEY_ID and APNS_TEAM_ID are required");
  if (!topic) return unconfigured("apns", "APNS_TOPIC (the app's bundle id) is not set");

  const sendOne = async (token: string, m: PushMessage): Promise<Outcome> => {
    // 403 ExpiredProviderToken: our cached JWT aged out early (clock skew); sign a fresh one once.
    let rejected: string | undefined;
    for (let fresh = 0; fresh < 2; fresh++) {
      let jwt: string;
      try {
        jwt = await providerToken(keyP8, keyId, teamId, rejected);
      } catch (e) {
        return { status: "failed", reason: `APNs credentials: ${(e as Error).message}` };
      }
      const res = await pushFetch(`${cfg.baseUrl}/3/device/${encodeURIComponent(token)}`, {
        method: "POST",
        headers: {
          authorization: `bearer ${jwt}`,
          "apns-topic": topic,
          "apns-push-type": "alert",
          "apns-priority": "10",
          "content-type": "application/json; charset=utf-8",
        },
        body: JSON.stringify(apnsPayload(m)),
      });
      if (isOutcome(res)) return res;
      if (res.ok) {
        await res.body?.cancel();
        return { status: "sent" };
      }
      const reason = ((await jsonOrNull(res)) as { reason?: unknown } | null)?.reason;
      const why = typeof reason === "string" ? reason : "";
      // 410: the token is no longer active for the topic (app removed, or token expired).
      if (res.status === 410) return { status: "dead", reason: `APNs 410 ${why}`.trim() };
      if (res.status === 403 && why === "ExpiredProviderToken" && fresh === 0) {
        rejected = jwt;
        continue;
      }
      // BadDeviceToken (400) is kept on purpose: it is also what a sandbox token gets from the
      // production host, and deleting on a misconfiguration would wipe every iOS device.
      return genericOutcome(res, `APNs answered ${res.status} ${why}`.trim());
    }
    return { status: "failed", reason: "APNs rejected a freshly signed provider token" };
  };

  return {
    provider: "apns",
    send: (tokens, m) => mapLimit(tokens, limits.pushConcurrency, (t) => sendOne(t, m)),
  };
}

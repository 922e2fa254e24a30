/**
 * Firebase Cloud Messaging, HTTP v1 API. The service-account JSON secret (`FCM_SERVICE_ACCOUNT`)
 * is exchanged for an OAuth access token with the JWT-bearer grant (RFC 7523): an RS256 JWT
 * signed with the account's private key, POSTed to the token URL. The access token is cached per
 * isolate until shortly before it expires. One HTTP request per device (v1 has no multicast).
 */

import type { Config } from "../../../config";
import { limits } from "../../../config";
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

const SCOPE = "https://www.googleapis.com/auth/firebase.messaging";
/** Refresh this long before Google's stated expiry, so a token never expires mid-request. */
const EXPIRY_MARGIN_SEC = 60;

interface ServiceAccount {
  projectId: string;
  clientEmail: string;
  privateKey: string;
  privateKeyId: string | null;
}

/** Parses the service-account JSON; returns an error text (never the key) when it is unusable. */
function parseServiceAccount(json: string): ServiceAccount | string {
  let o: unknown;
  try {
    o = JSON.parse(json);
  } catch {
    return "FCM_SERVICE_ACCOUNT is not valid JSON";
  }
  if (typeof o !== "object" || o === null) return "FCM_SERVICE_ACCOUNT is not a JSON object";
  const r = o as Record<string, unknown>;
  const str = (k: string) => (typeof r[k] === "string" && (r[k] as string).length > 0 ? (r[k] as string) : null);
  const projectId = str("project_id");
  const clientEmail = str("client_email");
  const privateKey = str("private_key");
  if (!projectId || !clientEmail || !privateKey)
    return "FCM_SERVICE_ACCOUNT lacks project_id, client_email or private_key";
  return { projectId, clientEmail, privateKey, privateKeyId: str("private_key_id") };
}

const tokenCache = new Map<string, { token: string; expiresAt: number }>();
const inflight = new Map<string, Promise<string | Outcome>>();

/** Forgets cached access tokens (tests use it to exercise the token exchange). */
export function clearFcmTokenCache(): void {
  tokenCache.clear();
}

async function fetchAccessToken(tokenUrl: string, sa: ServiceAccount): Promise<string | Outcome> {
  let assertion: string;
  try {
    const key = await importSigningKey(sa.privateKey, "RS256");
    const now = Math.floor(Date.now() / 1000);
    assertion = await signJwt(
      "RS256",
      key,
      { typ: "JWT", ...(sa.privateKeyId ? { kid: sa.privateKeyId } : {}) },
      { iss: sa.clientEmail, scope: SCOPE, aud: tokenUrl, iat: now, exp: now + 3600 },
    );
  } catch (e) {
    return { status: "failed", reason: `FCM credentials: ${(e as Error).message}` };
  }
  const res = await pushFetch(tokenUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion }).toString(),
  });
  if (isOutcome(res)) return res;
  const body = (await jsonOrNull(res)) as { access_token?: unknown; expires_in?: unknown; error?: unknown } | null;
  if (!res.ok || typeof body?.access_token !== "string") {
    // Google's OAuth errors are codes like `invalid_grant`; they hold no secrets.
    return genericOutcome(
      res,
      `FCM token exchange answered ${res.status}${typeof body?.error === "string" ? ` ${body.error}` : ""}`,
    );
  }
  const ttl = typeof body.expires_in === "number" ? body.expires_in : 3600;
  tokenCache.set(`${tokenUrl}|${sa.clientEmail}|${sa.privateKeyId ?? ""}`, {
    token: body.access_token,
    expiresAt: Date.now() + Math.max(0, ttl - EXPIRY_MARGIN_SEC) * 1000,
  });
  return body.access_token;
}

/** A cached access token, or one fresh exchange shared by concurrent callers. */
function accessToken(tokenUrl: string, sa: ServiceAccount, forceRefresh: boolean): Promise<string | Outcome> {
  const id = `${tokenUrl}|${sa.clientEmail}|${sa.privateKeyId ?? ""}`;
  if (forceRefresh) tokenCache.delete(id);
  const hit = tokenCache.get(id);
  if (hit && hit.expiresAt > Date.now()) return Promise.resolve(hit.token);
  let p = inflight.get(id);
  if (!p) {
    p = fetchAccessToken(tokenUrl, sa).finally(() => inflight.delete(id));
    inflight.set(id, p);
  }
  return p;
}

/** The FCM v1 `message` for one device token. */
function fcmMessage(token: string, m: PushMessage) {
  return {
    message: {
      token,
      notification: { title: m.title, body: m.body },
      data: m.data,
      android: { priority: "HIGH" },
      apns: {
        headers: { "apns-priority": "10" },
        payload: { aps: { sound: "default", ...(m.threadId ? { "thread-id": m.threadId } : {}) } },
      },
    },
  };
}

/** FCM's specific error code (`UNREGISTERED`, `QUOTA_EXCEEDED`, ...) from an error body. */
function fcmErrorCode(body: unknown): string | null {
  const details = (body as { error?: { details?: unknown } } | null)?.error?.details;
  if (!Array.isArray(details)) return null;
  for (const d of details) {
    const code = (d as { errorCode?: unknown } | null)?.errorCode;
    if (typeof code === "string") return code;
  }
  return null;
}

export function fcmSender(cfg: Config["push"]["fcm"]): PushSender {
  if (!cfg.serviceAccount) return unconfigured("fcm", "FCM_SERVICE_ACCOUNT is not set");
  const sa = parseServiceAccount(cfg.serviceAccount);
  if (typeof sa === "string") return unconfigured("fcm", sa);
  const url = `${cfg.baseUrl}/v1/projects/${encodeURIComponent(sa.projectId)}/messages:send`;

  const sendOne = async (token: string, m: PushMessage): Promise<Outcome> => {
    // A 401 means the cached access token was revoked or expired early: exchange once more.
    for (let refresh = 0; refresh < 2; refresh++) {
      const at = await accessToken(cfg.tokenUrl, sa, refresh > 0);
      if (typeof at !== "string") return at;
      const res = await pushFetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${at}`, "content-type": "application/json; charset=utf-8" },
        body: JSON.stringify(fcmMessage(token, m)),
      });
      if (isOutcome(res)) return res;
      if (res.ok) {
        await res.body?.cancel();
        return { status: "sent" };
      }
      const body = await jsonOrNull(res);
      const code = fcmErrorCode(body);
      if (code === "UNREGISTERED") return { status: "dead", reason: "FCM UNREGISTERED" };
      // Firebase's token guidance: INVALID_ARGUMENT about the token itself (not the payload) is a dead token too.
      const text = (body as { error?: { message?: unknown } } | null)?.error?.message;
      if (code === "INVALID_ARGUMENT" && typeof text === "string" && /registration token/i.test(text))
        return { status: "dead", reason: "FCM invalid registration token" };
      if (res.status === 401 && refresh === 0) continue;
      return genericOutcome(res, `FCM answered ${res.status}${code ? ` ${code}` : ""}`);
    }
    return { status: "failed", reason: "FCM rejected a freshly issued access token" };
  };

  return {
    provider: "fcm",
    send: (tokens, m) => mapLimit(tokens, limits.pushConcurrency, (t) => sendOne(t, m)),
  };
}

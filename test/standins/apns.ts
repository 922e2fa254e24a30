/**
 * APNs provider API stand-in (token auth): `POST /apns/3/device/<hex token>`. Checks what Apple
 * checks: `authorization: bearer <ES256 JWT>` signed by the test .p8 key (kid, iss = team id,
 * iat under an hour old), `apns-topic` = the app's bundle id, `apns-push-type`, a JSON payload
 * with `aps` of at most 4 KB. Answers 200 with `apns-id`, or Apple's `{ reason }` errors.
 * Tokens steer the answer: `dead…` → 410 Unregistered; `fa11…` → 503 ServiceUnavailable on the
 * first try, then success. Plain HTTP/1.1 (real APNs is HTTP/2 only; see src/features/push/senders/apns.ts).
 */
import { decodeProtectedHeader, importSPKI, jwtVerify } from "jose";
import { APNS_TEST_KEY_ID, APNS_TEST_TEAM_ID, APNS_TEST_TOPIC, apnsTestPublicKeyPem } from "./keys";
import type { Standin, StandinReply } from "./server";

const PUSH_TYPES = new Set([
  "alert",
  "background",
  "location",
  "voip",
  "complication",
  "fileprovider",
  "mdm",
  "liveactivity",
  "pushtotalk",
]);
const apnsError = (status: number, reason: string, extra: Record<string, unknown> = {}): StandinReply => ({
  status,
  body: { reason, ...extra },
});

export function apnsStandin(): Standin {
  const publicKey = importSPKI(apnsTestPublicKeyPem(), "ES256");
  const tries = new Map<string, number>();
  let n = 0;
  return {
    prefix: "/apns",
    async handle(req) {
      const m = /^\/apns\/3\/device\/([^/]+)$/.exec(req.path);
      if (!m) return null;
      if (req.method !== "POST") return apnsError(405, "MethodNotAllowed");
      const jwt = /^bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
      if (!jwt) return apnsError(403, "MissingProviderToken");
      try {
        if (decodeProtectedHeader(jwt).kid !== APNS_TEST_KEY_ID) return apnsError(403, "InvalidProviderToken");
        const { payload } = await jwtVerify(jwt, await publicKey, {
          algorithms: ["ES256"],
          issuer: APNS_TEST_TEAM_ID,
          requiredClaims: ["iat"],
        });
        const age = Date.now() / 1000 - payload.iat!;
        if (age > 3600) return apnsError(403, "ExpiredProviderToken");
        if (age < -60) return apnsError(403, "InvalidProviderToken");
      } catch {
        return apnsError(403, "InvalidProviderToken");
      }
      const topic = req.headers["apns-topic"];
      if (!topic) return apnsError(400, "MissingTopic");
      if (topic !== APNS_TEST_TOPIC) return apnsError(400, "TopicDisallowed");
      const pushType = req.headers["apns-push-type"];
      if (!pushType || !PUSH_TYPES.has(pushType)) return apnsError(400, "InvalidPushType");
      if (!req.body) return apnsError(400, "PayloadEmpty");
      if (Buffer.byteLength(req.body) > 4096) return apnsError(413, "PayloadTooLarge");
      let payload: { aps?: { alert?: unknown } };
      try {
        payload = JSON.parse(req.body) as typeof payload;
      } catch {
        return apnsError(400, "PayloadEmpty");
      }
      if (typeof payload.aps !== "object" || (pushType === "alert" && !payload.aps.alert))
        return apnsError(400, "PayloadEmpty");
      const token = m[1]!;
      if (!/^[0-9a-fA-F]{32,200}$/.test(token)) return apnsError(400, "BadDeviceToken");
      const attempt = (tries.get(token) ?? 0) + 1;
      tries.set(token, attempt);
      if (token.startsWith("dead")) return apnsError(410, "Unregistered", { timestamp: Date.now() });
      if (token.startsWith("fa11") && attempt === 1) return apnsError(503, "ServiceUnavailable");
      return { status: 200, headers: { "apns-id": `00000000-0000-4000-8000-${String(++n).padStart(12, "0")}` } };
    },
  };
}

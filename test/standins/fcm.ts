/**
 * Firebase Cloud Messaging stand-in: Google's OAuth token endpoint and the FCM HTTP v1 send API.
 * - `POST /fcm/token`: JWT-bearer grant; the assertion must be an RS256 JWT signed by the test
 *   service account's key (kid, iss, aud = this URL, scope, at most one hour). Answers an
 *   access token like oauth2.googleapis.com does.
 * - `POST /fcm/v1/projects/<project>/messages:send`: needs `Bearer <issued access token>` and
 *   `{ message: { token, ... } }`. Tokens steer the answer: `dead-…` → 404 UNREGISTERED;
 *   `invalid-…` → 400 INVALID_ARGUMENT "not a valid FCM registration token";
 *   `flaky-…` → 503 UNAVAILABLE on the first try, then success; `throttled-…` → 429
 *   QUOTA_EXCEEDED with Retry-After on the first try, then success.
 * - `POST /fcm/_test/revoke`: test-only, forgets every issued access token (→ 401 until a new exchange).
 */
import { decodeProtectedHeader, importSPKI, jwtVerify } from "jose";
import { FCM_TEST_CLIENT_EMAIL, FCM_TEST_KEY_ID, FCM_TEST_PROJECT, fcmTestPublicKeyPem } from "./keys";
import type { Standin, StandinReply } from "./server";

const SCOPE = "https://www.googleapis.com/auth/firebase.messaging";

const fcmError = (code: number, status: string, message: string, errorCode?: string): StandinReply => ({
  status: code,
  body: {
    error: {
      code,
      message,
      status,
      ...(errorCode
        ? { details: [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode }] }
        : {}),
    },
  },
});

export function fcmStandin(): Standin {
  const publicKey = importSPKI(fcmTestPublicKeyPem(), "RS256");
  const issued = new Set<string>();
  const tries = new Map<string, number>();
  let n = 0;
  return {
    prefix: "/fcm",
    async handle(req) {
      if (req.method !== "POST") return null;
      if (req.path === "/fcm/_test/revoke") {
        issued.clear();
        return { status: 204 };
      }
      if (req.path === "/fcm/token") {
        const form = new URLSearchParams(req.body);
        if (!(req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded"))
          return { status: 400, body: { error: "invalid_request", error_description: "form body expected" } };
        if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer")
          return { status: 400, body: { error: "unsupported_grant_type" } };
        const assertion = form.get("assertion") ?? "";
        try {
          const header = decodeProtectedHeader(assertion);
          if (header.kid !== FCM_TEST_KEY_ID) throw new Error(`unknown kid ${String(header.kid)}`);
          const { payload } = await jwtVerify(assertion, await publicKey, {
            algorithms: ["RS256"],
            issuer: FCM_TEST_CLIENT_EMAIL,
            audience: `http://${req.headers.host}/fcm/token`,
            requiredClaims: ["iat", "exp"],
          });
          if (payload.scope !== SCOPE) throw new Error("wrong scope");
          if (payload.exp! - payload.iat! > 3600) throw new Error("lifetime over one hour");
        } catch (e) {
          return {
            status: 400,
            body: { error: "invalid_grant", error_description: `Invalid JWT: ${(e as Error).message}` },
          };
        }
        const token = `ya29.test-${++n}`;
        issued.add(token);
        return { status: 200, body: { access_token: token, expires_in: 3599, token_type: "Bearer" } };
      }
      const m = /^\/fcm\/v1\/projects\/([^/]+)\/messages:send$/.exec(req.path);
      if (!m) return null;
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
      if (!bearer || !issued.has(bearer))
        return fcmError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.");
      if (m[1] !== FCM_TEST_PROJECT)
        return fcmError(403, "PERMISSION_DENIED", "Permission denied on project.", "SENDER_ID_MISMATCH");
      let msg: { token?: unknown; data?: unknown } | undefined;
      try {
        msg = (JSON.parse(req.body) as { message?: typeof msg }).message;
      } catch {
        return fcmError(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
      }
      const token = msg?.token;
      if (typeof token !== "string" || !token)
        return fcmError(400, "INVALID_ARGUMENT", "Request contains an invalid argument.", "INVALID_ARGUMENT");
      // FCM's data map carries strings only.
      if (
        msg?.data !== undefined &&
        (typeof msg.data !== "object" ||
          msg.data === null ||
          Object.values(msg.data).some((x) => typeof x !== "string"))
      ) {
        return fcmError(
          400,
          "INVALID_ARGUMENT",
          "Invalid value at 'message.data': values must be strings.",
          "INVALID_ARGUMENT",
        );
      }
      const attempt = (tries.get(token) ?? 0) + 1;
      tries.set(token, attempt);
      if (token.startsWith("dead-"))
        return fcmError(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED");
      if (token.startsWith("invalid-"))
        return fcmError(
          400,
          "INVALID_ARGUMENT",
          "The registration token is not a valid FCM registration token",
          "INVALID_ARGUMENT",
        );
      if (token.startsWith("flaky-") && attempt === 1)
        return fcmError(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE");
      if (token.startsWith("throttled-") && attempt === 1)
        return {
          ...fcmError(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", "QUOTA_EXCEEDED"),
          headers: { "retry-after": "30" },
        };
      return { status: 200, body: { name: `projects/${m[1]}/messages/${++n}` } };
    },
  };
}

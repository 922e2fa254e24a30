/** Request and response schemas of `/v1/app-check` and the admin's debug tokens (also the OpenAPI document). */
import * as v from "valibot";

const b64 = (max: number) => v.pipe(v.string(), v.minLength(1), v.maxLength(max), v.regex(/^[A-Za-z0-9+/_=-]+$/));
const Challenge = v.pipe(v.string(), v.minLength(1), v.maxLength(128));

export const ChallengeSchema = v.object({ challenge: v.string(), expiresAt: v.string() });
/** `expiresIn` (seconds) beside the contract's `expiresAt`: a device with a wrong clock still renews in time. */
export const TokenSchema = v.object({ token: v.string(), expiresAt: v.string(), expiresIn: v.number() });

export const AppleBody = v.pipe(
  v.strictObject({
    /** SHA-256 of the key, base64 (padded or not). */
    keyId: v.pipe(v.string(), v.regex(/^[A-Za-z0-9+/_-]{43}=?$/)),
    attestation: v.optional(b64(16_384)),
    assertion: v.optional(b64(4096)),
    challenge: Challenge,
  }),
  v.check((b) => (b.attestation === undefined) !== (b.assertion === undefined), "send attestation or assertion"),
);
export const AndroidBody = v.strictObject({
  integrityToken: v.pipe(v.string(), v.minLength(1), v.maxLength(16_384)),
  challenge: Challenge,
});
export const WebBody = v.strictObject({ turnstileToken: v.pipe(v.string(), v.minLength(1), v.maxLength(2048)) });
export const DebugBody = v.strictObject({ debugToken: v.pipe(v.string(), v.minLength(1), v.maxLength(128)) });

export const DebugTokenCreate = v.strictObject({
  name: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(100)),
});
export const DebugTokenCreated = v.object({ id: v.string(), name: v.string(), debugToken: v.string() });
const DebugTokenSchema = v.object({
  id: v.string(),
  name: v.string(),
  createdBy: v.string(),
  createdAt: v.string(),
  lastUsedAt: v.nullable(v.string()),
});
export const DebugTokenList = v.object({ items: v.array(DebugTokenSchema) });

/** Request and response schemas of `/v1/auth/passkeys/*` (WebAuthn's JSON forms: binary fields in base64url). */
import * as v from "valibot";
import { limits } from "../../config";
import { Name, SessionSchema, UserSchema } from "./schemas";

const B64url = (max: number) => v.pipe(v.string(), v.maxLength(max), v.regex(/^[A-Za-z0-9_-]*$/, "must be base64url"));
const CredentialId = v.pipe(B64url(1366), v.minLength(22));
const Transports = v.pipe(
  v.array(v.pipe(v.string(), v.maxLength(32), v.regex(/^[a-z-]+$/, "must be a transport name"))),
  v.maxLength(10),
);
const Attachment = v.optional(v.nullable(v.picklist(["platform", "cross-platform"])));
const Extensions = v.optional(v.record(v.pipe(v.string(), v.maxLength(64)), v.unknown()));

/** `PublicKeyCredential.toJSON()` of a registration (as browsers and react-native-passkey give it). */
const RegistrationCredential = v.strictObject({
  id: CredentialId,
  rawId: CredentialId,
  type: v.literal("public-key"),
  response: v.strictObject({
    clientDataJSON: B64url(8192),
    attestationObject: B64url(32_768),
    transports: v.optional(Transports),
    authenticatorData: v.optional(B64url(16_384)),
    publicKey: v.optional(B64url(4096)),
    publicKeyAlgorithm: v.optional(v.number()),
  }),
  authenticatorAttachment: Attachment,
  clientExtensionResults: Extensions,
});

/** `PublicKeyCredential.toJSON()` of an assertion. */
const AssertionCredential = v.strictObject({
  id: CredentialId,
  rawId: CredentialId,
  type: v.literal("public-key"),
  response: v.strictObject({
    clientDataJSON: B64url(8192),
    authenticatorData: B64url(16_384),
    signature: B64url(1024),
    userHandle: v.optional(v.nullable(B64url(128))),
  }),
  authenticatorAttachment: Attachment,
  clientExtensionResults: Extensions,
});

export const RegisterBody = v.strictObject({ credential: RegistrationCredential, name: v.optional(Name) });
export const SignInBody = v.strictObject({ credential: AssertionCredential });
export const RenameBody = v.strictObject({ name: Name });

export const PasskeySchema = v.object({
  id: v.string(),
  name: v.string(),
  createdAt: v.string(),
  lastUsedAt: v.nullable(v.string()),
});
export const PasskeyList = v.object({
  items: v.pipe(v.array(PasskeySchema), v.maxLength(limits.passkeysPerUser)),
  nextCursor: v.null(),
});

const Descriptor = v.object({
  type: v.literal("public-key"),
  id: v.string(),
  transports: v.optional(v.array(v.string())),
});
export const CreationOptions = v.object({
  challenge: v.string(),
  rp: v.object({ id: v.string(), name: v.string() }),
  user: v.object({ id: v.string(), name: v.string(), displayName: v.string() }),
  pubKeyCredParams: v.array(v.object({ type: v.literal("public-key"), alg: v.number() })),
  timeout: v.number(),
  attestation: v.literal("none"),
  authenticatorSelection: v.object({
    residentKey: v.literal("required"),
    requireResidentKey: v.literal(true),
    userVerification: v.literal("required"),
  }),
  excludeCredentials: v.array(Descriptor),
});
export const RequestOptions = v.object({
  challenge: v.string(),
  rpId: v.string(),
  timeout: v.number(),
  userVerification: v.literal("required"),
  allowCredentials: v.array(Descriptor),
});
export const PasskeyAuthResult = v.object({ user: UserSchema, session: SessionSchema });

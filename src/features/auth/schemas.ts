/** Request and response schemas of the auth and account routes (validation + OpenAPI). */
import * as v from "valibot";
import { limits } from "../../config";

const Email = v.pipe(
  v.string(),
  v.trim(),
  v.toLowerCase(),
  v.maxLength(limits.emailMax),
  v.email("must be an email address"),
);
const Password = v.pipe(
  v.string(),
  v.minLength(limits.passwordMin, `must be at least ${limits.passwordMin} characters`),
  v.maxLength(limits.passwordMax, `must be at most ${limits.passwordMax} characters`),
);
export const Name = v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(limits.nameMax));
const Token = v.pipe(v.string(), v.minLength(1), v.maxLength(512));

/** A BCP 47 language tag (`fr`, `pt-BR`): the device's language, for mails. */
export const Locale = v.pipe(
  v.string(),
  v.maxLength(limits.localeMax),
  v.regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/, "must be a language tag such as fr or pt-BR"),
);
export const SignupBody = v.strictObject({
  email: Email,
  password: Password,
  name: v.optional(Name),
  locale: v.optional(Locale),
});
export const LoginBody = v.strictObject({
  email: Email,
  password: v.pipe(v.string(), v.minLength(1), v.maxLength(limits.passwordMax)),
});
export const LinkBody = v.strictObject({ email: Email, password: Password });
export const RefreshBody = v.strictObject({ refreshToken: Token });
export const PasswordChangeBody = v.strictObject({
  currentPassword: v.pipe(v.string(), v.minLength(1), v.maxLength(limits.passwordMax)),
  newPassword: Password,
});
export const PasswordResetBody = v.strictObject({ email: Email });
export const PasswordResetConfirmBody = v.strictObject({ token: Token, newPassword: Password });
export const TokenBody = v.strictObject({ token: Token });
export const IdTokenBody = v.strictObject({
  provider: v.picklist(["apple", "google"]),
  idToken: v.pipe(v.string(), v.minLength(1), v.maxLength(8192)),
  nonce: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(512))),
  name: v.optional(Name),
  locale: v.optional(Locale),
  /** Sign in with Apple's `authorizationCode`: exchanged for a refresh token revoked when the account is deleted. */
  authorizationCode: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(1024))),
});
export const OtpBody = v.strictObject({ email: Email, locale: v.optional(Locale) });
export const OtpVerifyBody = v.union([
  v.strictObject({
    email: Email,
    code: v.pipe(v.string(), v.regex(/^\d{6}$/, "must be the 6-digit code")),
    locale: v.optional(Locale),
  }),
  v.strictObject({ token: Token, locale: v.optional(Locale) }),
]);
export const SessionIdParam = v.strictObject({ id: v.pipe(v.string(), v.minLength(1), v.maxLength(64)) });

export const UserSchema = v.object({
  id: v.string(),
  email: v.nullable(v.string()),
  emailVerified: v.boolean(),
  name: v.nullable(v.string()),
  avatarFileId: v.nullable(v.string()),
  anonymous: v.boolean(),
  role: v.picklist(["user", "admin"]),
  disabled: v.boolean(),
  locale: v.nullable(v.string()),
  createdAt: v.string(),
});
export const SessionSchema = v.object({
  accessToken: v.string(),
  refreshToken: v.string(),
  tokenType: v.literal("Bearer"),
  expiresIn: v.number(),
});
export const AuthResult = v.object({ user: UserSchema, session: SessionSchema });
const OtpResult = v.object({ user: UserSchema, session: SessionSchema, created: v.boolean() });
/** A sign-in that proved its first factor and needs the second: no session yet. */
const MfaRequired = v.object({
  mfaRequired: v.literal(true),
  mfaToken: v.string(),
  methods: v.array(v.picklist(["totp", "recovery"])),
});
/** What every sign-in answers: a session, or (the account has a second factor) the mfaToken. */
export const SignInResult = v.union([AuthResult, MfaRequired]);
export const OtpSignInResult = v.union([OtpResult, MfaRequired]);
/** A TOTP code (6 digits) or a recovery code (`xxxxx-xxxxx`). */
const MfaCode = v.pipe(v.string(), v.trim(), v.minLength(6), v.maxLength(32));
export const MfaCodeBody = v.strictObject({ code: MfaCode });
export const MfaVerifyBody = v.strictObject({
  mfaToken: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
  code: MfaCode,
});
export const TotpEnrollment = v.object({ secret: v.string(), otpauthUrl: v.string() });
export const RecoveryCodes = v.object({ recoveryCodes: v.array(v.string()) });
export const SessionInfo = v.object({
  id: v.string(),
  createdAt: v.string(),
  lastUsedAt: v.string(),
  userAgent: v.nullable(v.string()),
  current: v.boolean(),
});

export const SocketTicketSchema = v.object({ ticket: v.string(), expiresAt: v.string() });

export type User = v.InferOutput<typeof UserSchema>;

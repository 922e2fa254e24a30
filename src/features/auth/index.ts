/**
 * Accounts and sessions: `/v1/auth/*`, the authentication middleware every feature uses, and the
 * only code that reads or writes the users, sessions and token tables (other features call the
 * functions exported here).
 */
import type { FeatureParts } from "../../lifecycle";
import { appleDeletionHook, appleRevokeBackstop } from "./apple";
import { mfaCleanup } from "./mfa";
import { oauthCleanup } from "./oauth";
import { otpCleanup } from "./otp";
import { passkeyCleanup, passkeysDeletionHook } from "./passkeys";
import { revocationCleanup } from "./revocations";
import { authCleanup } from "./sessions";

export {
  clearAvatarStatement,
  deleteUserStatement,
  fromUser,
  isGuestSql,
  liveSessionsQuery,
  localeOfEmail,
  publicProfilesQuery,
  rowWhileUserExists,
  sessionLiveSql,
  updateProfile,
  userEmailSql,
  userExists,
  userExistsSql,
  userNameSql,
  userNamesJsonSql,
} from "./for-features";
export { optionalAuth, requireAal2IfFactor, requireAuth, requireSocketUser, requireUser, userOf } from "./middleware";
export { revokeUserTokens, unmarkDisabled } from "./revocations";
export { authRoutes } from "./routes";
export { Locale, Name, UserSchema } from "./schemas";
export { getUser, toUser, type UserRow } from "./users";

export const authParts: FeatureParts = {
  cleanupTasks: [
    authCleanup,
    revocationCleanup,
    otpCleanup,
    oauthCleanup,
    appleRevokeBackstop,
    mfaCleanup,
    passkeyCleanup,
  ],
  deletionHooks: [appleDeletionHook, passkeysDeletionHook],
};

// The admin feature's needs.
export { issueToken } from "./accounts";
export { type AppleRevokeJob, authJobHandlers } from "./apple";
export {
  adminEmails,
  adminStanding,
  deleteUserSessions,
  expireUserSessions,
  findConsoleSession,
  liveSessionCount,
  newestUsersQuery,
  openConsoleSession,
  removeSignInMethod,
  type SignInMethod,
  searchUsersQuery,
  signInMethods,
  updateUserStatement,
  userByEmail,
  userCountsQuery,
  userRowQuery,
} from "./for-admin";
export { factorSummary, hasFactor, removeFactorsStatements, spendCode } from "./mfa";
export { listPasskeys, type PasskeyInfo, removePasskeyStatement } from "./passkeys";
export { revokeSession } from "./sessions";

/**
 * Accounts and sessions: `/v1/auth/*`, the authentication middleware every feature uses, and the
 * only code that reads or writes the users, sessions and token tables (other features call the
 * functions exported here).
 */
import type { FeatureParts } from "../../lifecycle";
import { revocationCleanup } from "./revocations";
import { authCleanup } from "./service";

export { optionalAuth, requireAuth, requireSocketUser, requireUser, userOf } from "./middleware";
export { revokeUserTokens, unmarkDisabled } from "./revocations";
export { authRoutes } from "./routes";
export { Name, UserSchema } from "./schemas";
export {
  clearAvatarStatement,
  deleteUserStatement,
  fromUser,
  getUser,
  isGuestSql,
  liveSessionsQuery,
  rowWhileUserExists,
  sessionLiveSql,
  toUser,
  updateProfile,
  userEmailSql,
  userExists,
  userExistsSql,
  userNameSql,
  userNamesJsonSql,
} from "./service";

export const authParts: FeatureParts = { cleanupTasks: [authCleanup, revocationCleanup] };

// The admin feature's needs.
export {
  adminStanding,
  deleteUserSessions,
  expireUserSessions,
  findConsoleSession,
  issueToken,
  liveSessionCount,
  newestUsersQuery,
  openConsoleSession,
  revokeSession,
  searchUsersQuery,
  type UserRow,
  updateUserStatement,
  userByEmail,
  userCountsQuery,
  userRowQuery,
} from "./service";

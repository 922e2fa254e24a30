/** App integrity (API.md "App integrity"): `/v1/app-check`, the guard, debug tokens and monitor counts. */
import type { FeatureParts } from "../../lifecycle";
import { appCheckCleanup } from "./service";

export { type CountRow, readCounts } from "./counts";
export { APP_CHECK_HEADER, appCheckGuard } from "./guard";
export { appCheckRoutes } from "./routes";
export { DebugTokenCreate, DebugTokenCreated, DebugTokenList } from "./schemas";
export {
  type DebugToken,
  debugTokenExistsSql,
  listDebugTokens,
  newDebugToken,
  revokeDebugTokenStatement,
} from "./service";

export const appCheckParts: FeatureParts = { cleanupTasks: [appCheckCleanup] };

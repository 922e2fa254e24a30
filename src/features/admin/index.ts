/** Administration: the admin API (`/v1/admin`: users, audit log, push) and the console at `/admin`. */
export { createConsole } from "./console/app";
export { requireAdmin } from "./middleware";
export { adminReleaseRoutes } from "./release";
export { adminRoutes } from "./routes";

import type { FeatureParts } from "../../lifecycle";
import { auditEventStatement } from "./service";

/** The admin feature keeps the audit log: every feature writes its rows through this statement. */
export const adminParts: FeatureParts = { auditStatement: auditEventStatement };

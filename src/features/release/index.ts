/**
 * Release controls: remote config (with the subscribe socket's `ConfigHub`), forced updates (426) and deep
 * links (the `.well-known` files, short links). The admin API and console call the functions exported here.
 */
import type { FeatureParts } from "../../lifecycle";
import { closeConfigSessionSockets } from "./hub";

export { ConfigHub } from "./hub";
export { configRoutes, linkRoutes, shortLinkPage, wellKnownRoutes } from "./routes";
export { requireCurrentApp } from "./upgrade";

export const releaseParts: FeatureParts = { sessionSocketClosers: [closeConfigSessionSockets] };

// The admin API's and console's needs.
export { announceConfigChange } from "./hub";
export { listLinks, toLink } from "./links";
export type { Rule } from "./rules";
export {
  AdminConfigKey,
  AdminConfigList,
  AdminLinkList,
  KeyParam,
  LinksQuery,
  PreviewQuery,
  PreviewResponse,
  PutConfigBody,
} from "./schemas";
export { parseVersion } from "./semver";
export { clearKeyStatements, codeDefaults, configSnapshot, forgetConfigCopy, setKeyStatements } from "./store";
export { valuesFor, withAccount } from "./values";

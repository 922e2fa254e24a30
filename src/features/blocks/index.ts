/** Blocks: `/v1/blocks`, and what chat and push ask of a user's block list. */
import type { FeatureParts } from "../../lifecycle";
import { blocksDeletionHook } from "./service";

export { blockRoutes } from "./routes";
export { blockedSql, blockersAmong } from "./service";

export const blocksParts: FeatureParts = { deletionHooks: [blocksDeletionHook] };

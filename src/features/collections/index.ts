/** App data: the collections declared in src/collections.ts, served at `/v1/collections/:name`. */
import type { FeatureParts } from "../../lifecycle";
import { deleteUserRecords } from "./service";

export { collectionRoutes } from "./routes";

export const collectionsParts: FeatureParts = { deletionHooks: [deleteUserRecords] };

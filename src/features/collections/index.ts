/** App data: the collections declared in src/collections.ts, served at `/v1/collections/:name`. */
import type { FeatureParts } from "../../lifecycle";
import { deleteUserRecords } from "./service";

export { collectionRoutes } from "./routes";

export const collectionsParts: FeatureParts = { deletionHooks: [deleteUserRecords] };

// The admin console's needs: the same declarations, validation and service as the API.
export type { Field } from "./define";
export { type Collection, collections, findCollection } from "./registry";
export { collectionSchemas } from "./schemas";
export { deleteRecord, getRecord, listRecords, type RecordRow, recordCounts, updateRecord } from "./service";

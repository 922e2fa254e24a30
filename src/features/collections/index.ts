/**
 * App data: the collections declared in src/app/collections.ts, served at `/v1/collections/:name`, `/v1/batch`, and
 * live over `…/subscribe`.
 */
import type { FeatureParts } from "../../lifecycle";
import { closeLiveSessionSockets } from "./live";
import { changeLogRetention } from "./retention";
import { deleteTeamRecords, liveMembershipChanged } from "./team-records";
import { deleteUserRecords } from "./writes";

export { CollectionHub } from "./hub";
export { batchRoutes, collectionRoutes, unknownCollection } from "./routes";

export const collectionsParts: FeatureParts = {
  deletionHooks: [deleteUserRecords],
  teamDeletionHooks: [deleteTeamRecords],
  membershipHooks: [liveMembershipChanged],
  cleanupTasks: [changeLogRetention],
  sessionSocketClosers: [closeLiveSessionSockets],
};

export type { RecordRow } from "./access";
// The admin console's needs: the same declarations, validation and service as the API.
export type { Field } from "./define";
export { getRecord, listRecords, recordCounts, teamRecordCounts } from "./reads";
export { type Collection, collections, findCollection } from "./registry";
export { collectionSchemas } from "./schemas";
export { searchRecords } from "./search";
export { createRecord, deleteRecord, updateRecord, type Writer } from "./writes";

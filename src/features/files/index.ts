/**
 * Files and media: `/v1/files` (streamed uploads, ranged downloads, signed URLs) and resumable
 * tus uploads at `/v1/uploads` (./tus), on R2. The only code that touches the files, uploads and
 * trash tables; other features call the functions exported here.
 */
import type { FeatureParts } from "../../lifecycle";
import { filesCleanup, filesDeletionHook } from "./service";
import { uploadsCleanup, uploadsDeletionHook } from "./tus/service";

export { fileRoutes } from "./routes";
export { tusDiscovery, uploadRoutes } from "./tus/routes";
export { isOwnFile, mayAttachFile } from "./service";

export const filesParts: FeatureParts = {
  deletionHooks: [filesDeletionHook, uploadsDeletionHook],
  cleanupTasks: [filesCleanup, uploadsCleanup],
};

// The admin console's needs.
export { serveContent } from "./content";
export { deleteFile, type FileRow, getFile, listAllFiles, storageUsage } from "./service";

/**
 * Files and media: `/v1/files` (streamed uploads, ranged downloads, signed URLs) and resumable
 * tus uploads at `/v1/uploads` (./tus), on R2. The only code that touches the files, uploads and
 * trash tables; other features call the functions exported here.
 */
import type { FeatureParts, JobHandler } from "../../lifecycle";
import { analyzeImage, type FilesImageJob } from "./images";
import { filesCleanup, filesDeletionHook } from "./service";
import { teamFilesDeletionHook } from "./team-access";
import { teamUploadsDeletionHook, uploadsCleanup, uploadsDeletionHook } from "./tus/service";

export { fileRoutes } from "./routes";
export { isOwnFile, mayAttachFile } from "./service";
export { tusDiscovery, uploadRoutes } from "./tus/routes";

export const filesParts: FeatureParts = {
  deletionHooks: [filesDeletionHook, uploadsDeletionHook],
  cleanupTasks: [filesCleanup, uploadsCleanup],
  teamDeletionHooks: [teamFilesDeletionHook, teamUploadsDeletionHook],
};

// The admin console's needs.
export { serveContent } from "./content";
export type { FilesImageJob } from "./images";
export type { FileRow } from "./objects";
export { deleteFile, getFile, listAllFiles, storageUsage } from "./service";

/** The jobs files handles: an uploaded image's dimensions and placeholder. */
export const filesJobHandlers: { "files.image": JobHandler<FilesImageJob> } = {
  "files.image": (env, job) => analyzeImage(env, job.fileId),
};

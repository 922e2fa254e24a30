/** Files on R2 (metadata here, bytes in the MEDIA bucket) and resumable tus uploads. */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { users } from "./auth";

/**
 * One stored file. `objectKey` is `f/<id>`, never derived from user input. A row is written as
 * `pending` before the bytes stream to R2 and turns `ready` once they landed, so a failed or
 * abandoned upload leaves a row the cleanup task can find instead of an untracked object.
 * A pending row's `size` is the storage quota it reserved; a ready row's is the file's size.
 */
export const files = sqliteTable(
  "files",
  {
    id: text("id").primaryKey(),
    ownerId: text("owner_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    objectKey: text("object_key").notNull(),
    name: text("name").notNull(),
    contentType: text("content_type").notNull(),
    size: integer("size").notNull().default(0),
    visibility: text("visibility", { enum: ["public", "private"] }).notNull(),
    /** Hex SHA-256 of the bytes (computed while streaming); null for tus uploads, which use R2's etag. */
    sha256: text("sha256"),
    /** Unquoted entity tag served as `ETag`. */
    etag: text("etag").notNull().default(""),
    status: text("status", { enum: ["pending", "ready"] }).notNull(),
    createdAt: text("created_at").notNull(),
    /**
     * Images: size in pixels with the EXIF orientation applied, and a ThumbHash (base64); null until
     * the after-upload job ran.
     */
    width: integer("width"),
    height: integer("height"),
    placeholder: text("placeholder"),
    /**
     * The team the file belongs to (uploaded with `?teamId=`), or null. No foreign key: a team's
     * files go through the team deletion hook of src/features/files, which also removes the objects.
     */
    teamId: text("team_id"),
  },
  // files_owner_idx carries `size` so an account's storage use is summed from the index alone;
  // files_team_idx serves a team's file list, newest first.
  (t) => [
    index("files_owner_idx").on(t.ownerId, t.id, t.size),
    index("files_status_idx").on(t.status, t.createdAt),
    index("files_team_idx").on(t.teamId, t.createdAt, t.id),
  ],
);

/** R2 keys whose rows are gone but whose objects may still exist; the cleanup task retries them. */
export const fileTrash = sqliteTable("file_trash", {
  objectKey: text("object_key").primaryKey(),
  createdAt: text("created_at").notNull(),
});

/**
 * A tus upload on an R2 multipart upload. `received` bytes are stored: `parts` full parts in R2
 * plus a tail (`tailKey`, shorter than one part) waiting for more bytes.
 */
export const uploads = sqliteTable(
  "uploads",
  {
    id: text("id").primaryKey(),
    ownerId: text("owner_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    /** The id the file gets once complete; its object key is `f/<fileId>`. */
    fileId: text("file_id").notNull(),
    objectKey: text("object_key").notNull(),
    /** R2 multipart upload id; null for an empty upload. */
    r2UploadId: text("r2_upload_id"),
    uploadLength: integer("upload_length").notNull(),
    received: integer("received").notNull().default(0),
    tailKey: text("tail_key"),
    name: text("name").notNull(),
    contentType: text("content_type").notNull(),
    visibility: text("visibility", { enum: ["public", "private"] }).notNull(),
    completedAt: text("completed_at"),
    /** Metadata scrubber state (JSON, see files/scrub.ts) at `received`; null when the bytes are stored as sent. */
    scrub: text("scrub"),
    expiresAt: text("expires_at").notNull(),
    createdAt: text("created_at").notNull(),
    /** The team the file will belong to (Upload-Metadata `teamId`); null: the uploader's own file. */
    teamId: text("team_id"),
  },
  // uploads_owner_idx covers the quota sum of unfinished uploads (completed_at IS NULL).
  (t) => [
    index("uploads_owner_idx").on(t.ownerId, t.completedAt, t.uploadLength),
    index("uploads_expires_idx").on(t.expiresAt),
    // A deleted team's uploads in progress.
    index("uploads_team_idx").on(t.teamId).where(sql`${t.teamId} IS NOT NULL`),
  ],
);

/** Parts of an upload already in R2 (all `limits.uploadPartBytes` long). */
export const uploadParts = sqliteTable(
  "upload_parts",
  {
    uploadId: text("upload_id")
      .notNull()
      .references(() => uploads.id, { onDelete: "cascade" }),
    partNumber: integer("part_number").notNull(),
    etag: text("etag").notNull(),
  },
  (t) => [primaryKey({ columns: [t.uploadId, t.partNumber] })],
);

/** Request and response schemas of the files routes (validation + OpenAPI). */
import * as v from "valibot";
import { limits, thumbPresets } from "../../config";
import { limitParam } from "../../lib/validation";

export const Visibility = v.picklist(["public", "private"]);
export type Visibility = v.InferOutput<typeof Visibility>;

export const FileSchema = v.object({
  id: v.string(),
  name: v.string(),
  contentType: v.string(),
  size: v.number(),
  visibility: Visibility,
  ownerId: v.string(),
  /** The team the file belongs to; absent on files outside teams. */
  teamId: v.optional(v.string()),
  createdAt: v.string(),
  /** The content URL: open for public files; private ones need the owner's token or a signed URL. */
  url: v.string(),
  /** Hex SHA-256 of the bytes; null for files assembled from resumable uploads. */
  sha256: v.nullable(v.string()),
  /** Images: pixel size with the EXIF orientation applied; null for other files and until the after-upload job ran. */
  width: v.nullable(v.number()),
  height: v.nullable(v.number()),
  /** Images: a ThumbHash (base64) of the picture, for a blurred preview before the bytes arrive; null like width. */
  placeholder: v.nullable(v.string()),
});
export type FileJson = v.InferOutput<typeof FileSchema>;

export const FileIdParam = v.strictObject({ id: v.pipe(v.string(), v.uuid("must be a file id")) });

export const UploadQuery = v.strictObject({
  name: v.optional(v.pipe(v.string(), v.maxLength(1024))),
  visibility: v.optional(Visibility, "private"),
  /** The team the file belongs to (the caller must be its member, admin or owner). */
  teamId: v.optional(v.pipe(v.string(), v.uuid("must be a team id"))),
});

/** A thumbnail preset declared in config.ts (`thumbPresets`). */
const ThumbPreset = v.picklist(
  Object.keys(thumbPresets) as [keyof typeof thumbPresets, ...(keyof typeof thumbPresets)[]],
  "must be a thumbnail preset",
);

export const ContentQuery = v.strictObject({
  exp: v.optional(v.pipe(v.string(), v.maxLength(16))),
  sig: v.optional(v.pipe(v.string(), v.maxLength(128))),
  /** An image's thumbnail instead of the original: WebP, or AVIF when Accept prefers it. */
  thumb: v.optional(ThumbPreset),
});

export const SignedUrlBody = v.strictObject({
  expiresIn: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(limits.signedUrlMaxSec)),
    limits.signedUrlDefaultSec,
  ),
  /** A URL to this thumbnail preset only (images); without it the URL serves the original and any thumbnail. */
  thumb: v.optional(ThumbPreset),
});
export const SignedUrlResult = v.object({ url: v.string(), expiresAt: v.string() });

export const ListQuery = v.strictObject({
  limit: limitParam(limits.listDefault, limits.listMax),
  /** Without `teamId`: the last id of the previous page; with it, the opaque `nextCursor`. */
  cursor: v.optional(v.pipe(v.string(), v.maxLength(256))),
  /** One team's files (any member) instead of the caller's own. */
  teamId: v.optional(v.pipe(v.string(), v.uuid("must be a team id"))),
});
export const FileList = v.object({ items: v.array(FileSchema), nextCursor: v.nullable(v.string()) });

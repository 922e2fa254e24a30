/** `/v1/files`: streamed uploads to R2, metadata, content with ranges and caching, signed URLs. */
import { Hono } from "hono";
import type { AppEnv, Vars } from "../../env";
import { AppError } from "../../errors";
import { isId } from "../../lib/ids";
import { describe, validate } from "../../lib/validation";
import { readPrimaryForUsers } from "../../middleware/fresh-reads";
import { idempotency, idempotencyForStream } from "../../middleware/idempotency";
import { serviceAudit } from "../../middleware/service-audit";
import { optionalAuth, requireAuth, requireUser, userOf } from "../auth";
import { serveContent } from "./content";
import { formBoundary, formDataFile } from "./formdata";
import { beforeNewFile } from "./hooks";
import { afterUpload, isImageInput, serveThumbnail } from "./images";
import type { FileRow } from "./objects";
import { refuseDeclaredUnscrubbable, stripsMetadata } from "./privacy";
import * as schemas from "./schemas";
import {
  acceptedType,
  apiBase,
  deleteFile,
  getFile,
  listFiles,
  safeName,
  signedUrl,
  storeFile,
  toFile,
  verifySignedUrl,
} from "./service";
import { callerId, getFileFor, listTeamFiles, mayDelete, mayRead } from "./team-access";

const base = (c: { get: Vars["get"]; req: { url: string } }) => apiBase(c.get("config"), c.req.url);

type Ctx = Vars;

/** The file with the caller's role in its team, in one statement (see team-access.ts). */
const lookup = (c: Ctx, id: string) => getFileFor(c.get("db"), id, callerId(c.get("principal")));

const missing = () => new AppError("not_found", "No such file.");

/**
 * A file the caller may read; private files it may not read are reported as missing (404), never 403.
 * A private team file: the team's members and viewers (a removed member gets 404 at once).
 */
async function readableFile(c: Ctx, id: string, signed = false): Promise<FileRow> {
  const row = await lookup(c, id);
  if (!row || (row.visibility === "private" && !signed && !mayRead(c.get("principal"), row))) throw missing();
  return row;
}

/** A file the caller may delete (owner, a team file's uploader or team admins, the service key); 404 otherwise. */
async function deletableFile(c: Ctx, id: string): Promise<FileRow> {
  const row = await lookup(c, id);
  if (!row || !mayDelete(c.get("principal"), row)) throw missing();
  return row;
}

/** A file the caller may sign a URL for: one it may read with its token (not merely a public one). */
async function signableFile(c: Ctx, id: string): Promise<FileRow> {
  const row = await lookup(c, id);
  if (!row || !mayRead(c.get("principal"), row)) throw missing();
  return row;
}

const emptyBody = () => new ReadableStream<Uint8Array>({ start: (ctl) => ctl.close() });

export const fileRoutes = new Hono<AppEnv>()
  .post(
    "/",
    describe({
      tag: "Files",
      summary: "Upload a file (raw body or multipart/form-data field `file`)",
      description:
        "The body streams to R2. Image, video and audio types must match the bytes' signature. Public files lose " +
        "their location on the way in, by the type their bytes show whatever was declared: JPEG, PNG and WebP " +
        "their metadata (EXIF and its GPS position, XMP, IPTC; the EXIF orientation stays), MP4 and MOV their " +
        "location boxes; public HEIC, HEIF, AVIF and TIFF are refused (415). Images get `width`, `height` and " +
        "`placeholder` shortly after the upload. Larger files: resumable uploads at /v1/uploads. Files count " +
        "against the account's storage quota: a Content-Length that does not fit is refused before the body is " +
        "read, and a body without one stops at the quota. With Idempotency-Key, a retry with the same URL, " +
        "content type and length returns the first file (the streamed body is not hashed). With `teamId`, the " +
        "file belongs to that team (the caller must be its member, admin or owner: a viewer gets 403, a " +
        "non-member 404) and still counts against the uploader's quota.",
      responses: {
        201: { description: "The stored file", schema: schemas.FileSchema },
        413: {
          description:
            "payload_too_large (over the file size limit) or quota_exceeded (over the account's storage quota)",
        },
        415: { description: "unsupported_media_type: the bytes contradict the declared type" },
        403: { description: "forbidden: a viewer of the team named by `teamId`" },
        404: { description: "not_found: `teamId` names no team the caller belongs to" },
      },
    }),
    requireUser,
    idempotencyForStream,
    validate("query", schemas.UploadQuery),
    async (c) => {
      const { userId } = userOf(c);
      const q = c.req.valid("query");
      const body = c.req.raw.body ?? emptyBody();
      const declared = c.req.header("content-type");
      const boundary = formBoundary(declared);
      const cl = c.req.header("content-length");
      const contentLength = cl && /^\d{1,16}$/.test(cl) ? Number(cl) : null;
      // `length`: the file's exact size when known; `bound`: an upper bound (a form's whole body).
      let upload: {
        stream: ReadableStream<Uint8Array>;
        type: string | null | undefined;
        name: string | null | undefined;
        length: number | null;
        bound: number | null;
      };
      if (boundary) {
        const f = await formDataFile(body, boundary);
        upload = {
          stream: f.stream,
          type: f.contentType,
          name: q.name ?? f.filename,
          length: null,
          bound: contentLength,
        };
      } else {
        if (/^multipart\//i.test(declared ?? ""))
          throw new AppError("bad_request", "multipart/form-data needs a boundary parameter.");
        upload = { stream: body, type: declared, name: q.name, length: contentLength, bound: null };
      }
      const contentType = acceptedType(upload.type);
      refuseDeclaredUnscrubbable(c.get("config"), contentType, q.visibility);
      const meta = {
        ownerId: userId,
        name: safeName(upload.name),
        contentType,
        visibility: q.visibility,
        strip: stripsMetadata(c.get("config"), q.visibility),
        teamId: q.teamId ?? null,
      };
      await beforeNewFile(c, {
        name: meta.name,
        contentType,
        size: upload.length,
        visibility: q.visibility,
        teamId: meta.teamId,
      });
      const row = await storeFile(
        c.env,
        c.get("db"),
        c.get("config").storageQuotaBytes,
        meta,
        upload.stream,
        upload.length,
        upload.bound,
      );
      await afterUpload(c.env, row);
      const file = toFile(row, base(c));
      return c.json(file, 201, { location: `${base(c)}/v1/files/${row.id}` });
    },
  )
  .get(
    "/",
    describe({
      tag: "Files",
      summary: "The caller's files outside teams, or with `teamId` one team's files (any member), newest first",
      responses: {
        200: { description: "A page of files", schema: schemas.FileList },
        404: { description: "not_found: `teamId` names no team the caller belongs to" },
      },
    }),
    requireUser,
    readPrimaryForUsers,
    validate("query", schemas.ListQuery),
    async (c) => {
      const q = c.req.valid("query");
      const userId = userOf(c).userId;
      const cursor = q.cursor ?? null;
      if (!q.teamId && cursor !== null && !isId(cursor))
        throw new AppError("validation_failed", "The cursor is not valid; use the one a previous page returned.", {
          errors: [{ path: "cursor", message: "not a valid cursor" }],
        });
      const { rows, nextCursor } = q.teamId
        ? await listTeamFiles(c.get("db"), q.teamId, userId, q.limit, cursor)
        : await listFiles(c.get("db"), userId, q.limit, cursor);
      return c.json({ items: rows.map((r) => toFile(r, base(c))), nextCursor });
    },
  )
  .get(
    "/:id",
    describe({
      tag: "Files",
      summary: "File metadata",
      auth: "optional",
      description:
        "Public files: anyone. Private files: the owner or the service key, and for a team file the team's " +
        "members and viewers; others get 404.",
      responses: { 200: { description: "The file", schema: schemas.FileSchema }, 404: { description: "not_found" } },
    }),
    optionalAuth,
    readPrimaryForUsers,
    validate("param", schemas.FileIdParam),
    async (c) => c.json(toFile(await readableFile(c, c.req.valid("param").id), base(c))),
  )
  .get(
    "/:id/content",
    describe({
      tag: "Files",
      summary: "The file's bytes",
      auth: "optional",
      description:
        "ETag, If-None-Match (304), a single Range (206; several ranges get the whole file), Cache-Control. " +
        "Private files: the owner's token (a team file: a member's or viewer's), the service key, or a signed " +
        "URL (`exp`, `sig`). `thumb=<preset>`: an " +
        "image's thumbnail (made once, then served from storage), WebP or AVIF when Accept prefers it; a " +
        "non-image file or an unknown preset → 400.",
      responses: {
        200: { description: "The bytes", contentType: "application/octet-stream" },
        400: { description: "validation_failed: an unknown preset, or a thumbnail of a file that is not an image" },
        413: { description: "payload_too_large: the image is too large for a thumbnail (bytes or pixels)" },
        415: { description: "unsupported_media_type: the image could not be decoded for a thumbnail" },
        206: { description: "Partial content", contentType: "application/octet-stream" },
        304: { description: "Not modified" },
        403: { description: "forbidden: a tampered or expired signed URL" },
        404: { description: "not_found" },
        416: { description: "range_not_satisfiable" },
      },
    }),
    optionalAuth,
    readPrimaryForUsers,
    validate("param", schemas.FileIdParam),
    validate("query", schemas.ContentQuery),
    async (c) => {
      const { id } = c.req.valid("param");
      const { exp, sig, thumb } = c.req.valid("query");
      const signed = exp !== undefined || sig !== undefined;
      // The signature is checked before the lookup, so a bad one reveals nothing about the file.
      if (signed) await verifySignedUrl(c.get("config"), id, exp ?? "", sig ?? "", Date.now(), thumb);
      const row = await readableFile(c, id, signed);
      const access = row.visibility === "public" ? "public" : "private";
      if (thumb)
        return serveThumbnail(
          c.env,
          row,
          thumb,
          c.req.raw,
          access,
          async () => (await getFile(c.get("db"), id)) !== null,
          (p) => c.executionCtx.waitUntil(p),
        );
      return serveContent(c.env.MEDIA, row, c.req.raw, access);
    },
  )
  .post(
    "/:id/signed-url",
    describe({
      tag: "Files",
      summary: "A URL to the content that works without a token until it expires",
      responses: {
        200: { description: "The signed URL", schema: schemas.SignedUrlResult },
        404: { description: "not_found" },
      },
    }),
    requireAuth,
    readPrimaryForUsers,
    idempotency,
    validate("param", schemas.FileIdParam),
    validate("json", schemas.SignedUrlBody),
    async (c) => {
      const row = await signableFile(c, c.req.valid("param").id);
      const { expiresIn, thumb } = c.req.valid("json");
      if (thumb && !isImageInput(row.contentType))
        throw new AppError("validation_failed", "Thumbnails are made of images only.", {
          errors: [{ path: "thumb", message: "not an image file" }],
        });
      const exp = Math.floor(Date.now() / 1000) + expiresIn;
      // A URL that opens a private file to anyone holding it: the service key's grant is recorded.
      const audit = serviceAudit(c);
      if (audit) await audit({ action: "file.signed_url", target: `file:${row.id}`, detail: { expiresIn, thumb } });
      return c.json({
        url: await signedUrl(c.get("config"), base(c), row.id, exp, thumb),
        expiresAt: new Date(exp * 1000).toISOString(),
      });
    },
  )
  .delete(
    "/:id",
    describe({
      tag: "Files",
      summary: "Delete a file (owner or service key; a team file: its uploader or the team's admins and owner)",
      responses: { 204: { description: "Deleted" }, 404: { description: "not_found" } },
    }),
    requireAuth,
    readPrimaryForUsers,
    validate("param", schemas.FileIdParam),
    async (c) => {
      const row = await deletableFile(c, c.req.valid("param").id);
      // The service key's deletion leaves an audit row, in the deletion's batch.
      const audit = serviceAudit(c);
      await deleteFile(
        c.env,
        c.get("db"),
        row,
        audit ? [audit({ action: "file.delete", target: `file:${row.id}` })] : [],
      );
      return c.body(null, 204);
    },
  );

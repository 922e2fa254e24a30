/**
 * `/v1/uploads`: tus 1.0.0 resumable uploads (core, creation, creation-with-upload, termination,
 * expiration). Once the last byte lands the upload is an ordinary file, named by `Outpost-File-Id`.
 */
import { Hono, type MiddlewareHandler } from "hono";
import * as v from "valibot";
import { limits } from "../../../config";
import type { AppEnv, Vars } from "../../../env";
import { AppError } from "../../../errors";
import { describe, validate } from "../../../lib/validation";
import { requireUser, userOf } from "../../auth";
import { beforeNewFile } from "../hooks";
import { afterUpload } from "../images";
import { refuseDeclaredUnscrubbable, SCRUB_PENDING, stripsMetadata } from "../privacy";
import { Visibility } from "../schemas";
import { acceptedType, apiBase, safeName } from "../service";
import { teamUploadRefusal } from "../team-access";
import { appendToUpload, createUpload, isExpired, ownedUpload, terminateUpload, type UploadRow } from "./service";

const TUS_VERSION = "1.0.0";
const OFFSET_TYPE = "application/offset+octet-stream";

const discovery = {
  "Tus-Resumable": TUS_VERSION,
  "Tus-Version": TUS_VERSION,
  "Tus-Extension": "creation,creation-with-upload,termination,expiration",
  "Tus-Max-Size": String(limits.uploadMaxBytes),
};

/**
 * tus discovery (`OPTIONS`). Mounted in router.ts ahead of CORS, because the CORS middleware answers
 * every OPTIONS request itself; this adds the tus headers to that answer.
 */
export const tusDiscovery: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  if (c.req.method === "OPTIONS") for (const [k, val] of Object.entries(discovery)) c.res.headers.set(k, val);
};

/** Every tus request but OPTIONS names the protocol version; another version → 412. */
const tusVersion: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.req.header("tus-resumable") !== TUS_VERSION) {
    throw new AppError("precondition_failed", `Send Tus-Resumable: ${TUS_VERSION}.`, {
      headers: { "Tus-Version": TUS_VERSION },
    });
  }
  await next();
};

const UploadIdParam = v.strictObject({ id: v.pipe(v.string(), v.uuid("must be an upload id")) });

/** A non-negative integer header value, or null when absent; 400 when malformed. */
function intHeader(value: string | undefined, name: string): number | null {
  if (value === undefined) return null;
  if (!/^\d{1,16}$/.test(value.trim())) throw new AppError("bad_request", `${name} must be a non-negative integer.`);
  return Number(value.trim());
}

/** `Upload-Metadata`: comma-separated `key base64value` pairs (the value may be absent). */
function parseMetadata(header: string | undefined): Record<string, string> {
  // No prototype: keys such as `constructor` or `__proto__` are plain keys here.
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!header) return out;
  if (header.length > 4096) throw new AppError("bad_request", "Upload-Metadata is too long.");
  for (const pair of header.split(",")) {
    const [key, value, ...extra] = pair.trim().split(" ");
    if (!key || extra.length || !/^[\x21-\x7e]+$/.test(key) || key in out)
      throw new AppError("bad_request", "Upload-Metadata is malformed.");
    if (!value) {
      out[key] = "";
      continue;
    }
    try {
      out[key] = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(
        Uint8Array.from(atob(value), (ch) => ch.charCodeAt(0)),
      );
    } catch {
      throw new AppError("bad_request", `Upload-Metadata value of ${key} is not base64 UTF-8.`);
    }
  }
  return out;
}

/** The tus state headers of an upload. */
function stateHeaders(up: UploadRow): Record<string, string> {
  return {
    "Upload-Offset": String(up.received),
    "Upload-Length": String(up.uploadLength),
    ...(up.completedAt ? { "Outpost-File-Id": up.fileId } : { "Upload-Expires": new Date(up.expiresAt).toUTCString() }),
  };
}

/** An upload of the caller that can still be written or read; expired ones → 410. */
async function liveUpload(c: Vars, id: string): Promise<UploadRow> {
  const up = await ownedUpload(c.get("db"), id, userOf(c).userId);
  if (isExpired(up)) throw new AppError("gone", "This upload has expired.");
  // A team upload whose uploader left the team (or was made a viewer) goes no further.
  if (up.teamId && !up.completedAt) {
    const refused = await teamUploadRefusal(c.get("db"), up.teamId, up.ownerId);
    if (refused) throw refused;
  }
  return up;
}

/** `Upload-Metadata` `teamId`: a team's id, or none. */
function teamIdOf(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  if (!/^[\w-]{1,64}$/.test(raw))
    throw new AppError("validation_failed", "teamId is not a team id.", {
      errors: [{ path: "Upload-Metadata.teamId", message: "not a team id" }],
    });
  return raw;
}

export const uploadRoutes = new Hono<AppEnv>()
  .use(async (c, next) => {
    await next();
    c.res.headers.set("Tus-Resumable", TUS_VERSION);
    c.res.headers.set("Cache-Control", "no-store");
  })
  .post(
    "/",
    describe({
      tag: "Uploads",
      summary: "tus creation (and creation-with-upload)",
      description:
        "Headers: `Tus-Resumable: 1.0.0`, `Upload-Length`, `Upload-Metadata` (keys `filename`, `filetype`, " +
        "`visibility`, `teamId` for a team file: members and up, as `POST /v1/files?teamId=`). A body with " +
        "`Content-Type: application/offset+octet-stream` is the first chunk. Every later PATCH of a team " +
        "upload checks the uploader is still a member (404 otherwise).",
      responses: {
        201: { description: "Created; `Location` is the upload URL" },
        412: { description: "precondition_failed: unsupported tus version" },
        413: {
          description:
            "payload_too_large: over Tus-Max-Size; quota_exceeded: Upload-Length is more than the account's " +
            "storage quota has left (unfinished uploads count their whole Upload-Length)",
        },
        403: { description: "forbidden: a viewer uploading to a team" },
        404: { description: "not_found: a team the caller is not in" },
        415: { description: "unsupported_media_type" },
      },
    }),
    requireUser,
    tusVersion,
    async (c) => {
      if (c.req.header("upload-defer-length") !== undefined)
        throw new AppError("bad_request", "Upload-Defer-Length is not supported; send Upload-Length.");
      const length = intHeader(c.req.header("upload-length"), "Upload-Length");
      if (length === null) throw new AppError("bad_request", "Send Upload-Length.");
      if (length > limits.uploadMaxBytes)
        throw new AppError("payload_too_large", `Uploads are limited to ${limits.uploadMaxBytes} bytes.`);
      const withBody = c.req.header("content-type") === OFFSET_TYPE && c.req.raw.body !== null;
      const bodyLength = withBody ? intHeader(c.req.header("content-length"), "Content-Length") : null;
      if (bodyLength !== null && bodyLength > length)
        throw new AppError("payload_too_large", "The body runs past Upload-Length.");
      const meta = parseMetadata(c.req.header("upload-metadata"));
      const visibility = v.safeParse(Visibility, meta.visibility ?? "private");
      if (!visibility.success)
        throw new AppError("validation_failed", "visibility must be public or private.", {
          errors: [{ path: "Upload-Metadata.visibility", message: "must be public or private" }],
        });
      const contentType = acceptedType(meta.filetype);
      refuseDeclaredUnscrubbable(c.get("config"), contentType, visibility.output);
      const name = safeName(meta.filename);
      const teamId = teamIdOf(meta.teamId);
      await beforeNewFile(c, { name, contentType, size: length, visibility: visibility.output, teamId });
      let up = await createUpload(c.env, c.get("db"), c.get("config").storageQuotaBytes, {
        ownerId: userOf(c).userId,
        length,
        name,
        contentType,
        visibility: visibility.output,
        scrub: stripsMetadata(c.get("config"), visibility.output) ? SCRUB_PENDING : null,
        teamId,
      });
      if (withBody || length === 0) {
        try {
          up = await appendToUpload(c.env, c.get("db"), up, withBody ? c.req.raw.body : null);
        } catch (e) {
          // The client never learns this upload's URL: a failed first chunk leaves nothing behind.
          await terminateUpload(c.env, c.get("db"), up);
          throw e;
        }
        if (up.completedAt) await afterUpload(c.env, { id: up.fileId, contentType: up.contentType });
      }
      c.header("Location", `${apiBase(c.get("config"), c.req.url)}/v1/uploads/${up.id}`);
      for (const [k, val] of Object.entries(stateHeaders(up))) c.header(k, val);
      return c.body(null, 201);
    },
  )
  .get(
    "/:id",
    describe({
      tag: "Uploads",
      summary: "tus HEAD: the upload's offset (GET answers the same)",
      responses: {
        200: { description: "Upload-Offset, Upload-Length, Upload-Expires or Outpost-File-Id" },
        404: { description: "not_found" },
        410: { description: "gone: expired" },
      },
    }),
    requireUser,
    tusVersion,
    validate("param", UploadIdParam),
    async (c) => {
      const up = await liveUpload(c, c.req.valid("param").id);
      for (const [k, val] of Object.entries(stateHeaders(up))) c.header(k, val);
      return c.body(null, 200);
    },
  )
  .patch(
    "/:id",
    describe({
      tag: "Uploads",
      summary: "tus PATCH: append bytes at Upload-Offset",
      responses: {
        204: { description: "Stored; Upload-Offset is the new offset" },
        409: { description: "conflict: Upload-Offset is not the upload's offset" },
        410: { description: "gone: expired" },
        415: { description: "unsupported_media_type: wrong Content-Type, or the bytes contradict the declared type" },
      },
    }),
    requireUser,
    tusVersion,
    validate("param", UploadIdParam),
    async (c) => {
      if (c.req.header("content-type") !== OFFSET_TYPE)
        throw new AppError("unsupported_media_type", `PATCH bodies are ${OFFSET_TYPE}.`);
      const offset = intHeader(c.req.header("upload-offset"), "Upload-Offset");
      if (offset === null) throw new AppError("bad_request", "Send Upload-Offset.");
      let up = await liveUpload(c, c.req.valid("param").id);
      if (offset !== up.received)
        throw new AppError("conflict", `Upload-Offset is ${offset}, the upload is at ${up.received}.`, {
          headers: { "Upload-Offset": String(up.received) },
        });
      const length = intHeader(c.req.header("content-length"), "Content-Length");
      if (length !== null && length > up.uploadLength - up.received)
        throw new AppError("payload_too_large", "The body runs past Upload-Length.");
      if (!up.completedAt) {
        up = await appendToUpload(c.env, c.get("db"), up, c.req.raw.body);
        if (up.completedAt) await afterUpload(c.env, { id: up.fileId, contentType: up.contentType });
      }
      for (const [k, val] of Object.entries(stateHeaders(up))) c.header(k, val);
      return c.body(null, 204);
    },
  )
  .delete(
    "/:id",
    describe({
      tag: "Uploads",
      summary: "tus termination: discard the upload (a finished file stays)",
      responses: { 204: { description: "Terminated" }, 404: { description: "not_found" } },
    }),
    requireUser,
    tusVersion,
    validate("param", UploadIdParam),
    async (c) => {
      await terminateUpload(
        c.env,
        c.get("db"),
        await ownedUpload(c.get("db"), c.req.valid("param").id, userOf(c).userId),
      );
      return c.body(null, 204);
    },
  );

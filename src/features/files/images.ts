/**
 * Images on the Cloudflare Images binding (`IMAGES`): thumbnails of the presets in
 * `thumbPresets`, made once per format and kept in R2 (`r/<fileId>/<preset>.<format>`), and,
 * after each upload, an image's dimensions and a ThumbHash placeholder (a queue job).
 *
 * A cached thumbnail costs one R2 read and no transform. Concurrent first requests for the same
 * rendition share one transform (per isolate); it writes the complete object in one put, so a
 * reader sees either no rendition or a whole one. Images over `limits.imageMaxPixels` (by their
 * header, before decoding) are never transformed.
 */
import { rgbaToThumbHash } from "thumbhash";
import { type Config, limits, thumbPresets } from "../../config";
import { primaryDb } from "../../db";
import { AppError } from "../../errors";
import { enqueue } from "../../lifecycle";
import type { Access } from "./content";
import { noneMatch } from "./content";
import { headerSize } from "./dimensions";
import { type FileRow, renditionKey } from "./objects";
import { decodePng } from "./png";
import { getFile, setImageMeta, signedUrl } from "./service";

export type ThumbPreset = keyof typeof thumbPresets;

/** An image file was stored: record its width, height and placeholder (handled by `analyzeImage`). */
export interface FilesImageJob {
  type: "files.image";
  fileId: string;
}
type ThumbFormat = "webp" | "avif";

/** Image types the Images binding reads (thumbnails, dimensions, placeholder). */
const IMAGE_INPUTS = new Set([
  "image/jpeg",
  "image/png",
  "image/gif",
  "image/webp",
  "image/avif",
  "image/heic",
  "image/heif",
]);
export const isImageInput = (contentType: string) => IMAGE_INPUTS.has(contentType);

/** The q-value `accept` gives `type` (exact, `image/*`, `*\/*`, the most specific wins); null when unlisted. */
function qOf(accept: string, type: string): number | null {
  let best: { spec: number; q: number } | null = null;
  for (const part of accept.split(",")) {
    const [range = "", ...params] = part.trim().toLowerCase().split(";");
    const r = range.trim();
    const spec = r === type ? 3 : r === `${type.split("/")[0]}/*` ? 2 : r === "*/*" ? 1 : 0;
    if (!spec) continue;
    const qp = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    const q = qp ? Number(qp.slice(2)) : 1;
    if (!Number.isFinite(q)) continue;
    if (!best || spec > best.spec) best = { spec, q };
  }
  return best ? best.q : null;
}

/** AVIF when `Accept` names it and ranks it at least as high as WebP; WebP otherwise. */
function thumbFormat(accept: string | null | undefined): ThumbFormat {
  if (!accept || !/image\/avif/i.test(accept)) return "webp";
  const avif = qOf(accept, "image/avif") ?? 0;
  const webp = qOf(accept, "image/webp") ?? 0;
  return avif > 0 && avif >= webp ? "avif" : "webp";
}

/** An error of the Images binding (bad or unsupported input); other errors are R2/network. */
const isImagesError = (e: unknown): boolean => {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "number" && code >= 9400 && code < 9600;
};

async function transform(
  env: Env,
  body: ReadableStream<Uint8Array>,
  t: ImageTransform,
  format: ImageOutputOptions["format"],
): Promise<Uint8Array> {
  const out = await env.IMAGES.input(body).transform(t).output({ format });
  return new Uint8Array(await new Response(out.image()).arrayBuffer());
}

/**
 * The image's pixel size from its header (one ranged R2 read), before any decoding; null when the
 * object is gone. 413 when over `limits.imageMaxPixels`, 415 when the header does not tell.
 */
async function checkPixels(env: Env, row: FileRow): Promise<void> {
  const head = await env.MEDIA.get(row.objectKey, {
    range: { offset: 0, length: Math.min(row.size, limits.imageHeaderMaxBytes) },
  });
  if (!head) throw new AppError("not_found", "The file's bytes are missing.");
  const size = headerSize(new Uint8Array(await head.arrayBuffer()));
  if (!size) throw new AppError("unsupported_media_type", "The image's width and height could not be read.");
  if (size.width * size.height > limits.imageMaxPixels)
    throw new AppError(
      "payload_too_large",
      `The image has ${size.width}×${size.height} pixels; ` +
        `images are transformed up to ${limits.imageMaxPixels} pixels.`,
    );
}

/** Renditions being made in this isolate, by R2 key: concurrent requests share one transform. */
const making = new Map<string, Promise<Uint8Array>>();

/**
 * Makes a rendition once per key at a time: a request arriving while it is made awaits the same
 * bytes. The first request keeps the work alive (`waitUntil`) even if its client goes away, so
 * the others' continuations are never cancelled with it.
 */
function makeOnce(
  key: string,
  make: () => Promise<Uint8Array>,
  waitUntil: (p: Promise<unknown>) => void,
): Promise<Uint8Array> {
  let p = making.get(key);
  if (!p) {
    p = make().finally(() => making.delete(key));
    making.set(key, p);
    waitUntil(p.catch(() => {}));
  }
  return p;
}

/**
 * Serves the `preset` rendition of an image file: from R2 when made before (one read), else
 * transformed from the original (once at a time per rendition, after the pixel check), stored,
 * then served. `stillThere` re-checks the file after a new rendition was stored: when the file
 * was deleted meanwhile, the rendition goes too.
 */
export async function serveThumbnail(
  env: Env,
  row: FileRow,
  preset: ThumbPreset,
  req: Request,
  access: Access,
  stillThere: () => Promise<boolean>,
  waitUntil: (p: Promise<unknown>) => void,
): Promise<Response> {
  if (!isImageInput(row.contentType))
    throw new AppError("validation_failed", `Thumbnails are made of images only; this file is ${row.contentType}.`, {
      errors: [{ path: "thumb", message: "not an image file" }],
    });
  const format = thumbFormat(req.headers.get("accept"));
  const etag = `"${row.etag}.${preset}.${format}"`;
  const contentType = `image/${format}`;
  const base = row.name.replace(/\.[^.]*$/, "") || "image";
  const headers = new Headers({
    etag,
    "cache-control": access === "public" ? "public, max-age=31536000, immutable" : "private, no-cache",
    "content-type": contentType,
    "content-disposition": `inline; filename="${`${base}-${preset}`.replace(/[^\x20-\x7e]|["\\%;]/gu, "_")}.${format}"`,
    "content-security-policy": "default-src 'none'; sandbox",
    "x-content-type-options": "nosniff",
    vary: "Accept",
  });
  // A rendition never changes (the original is immutable), so a matching tag needs no R2 read.
  if (noneMatch(req.headers.get("if-none-match"), etag)) return new Response(null, { status: 304, headers });
  const key = renditionKey(row.id, preset, format);
  const hit = await env.MEDIA.get(key);
  if (hit) {
    headers.set("content-length", String(hit.size));
    return new Response(hit.body, { headers });
  }
  if (row.size > limits.imageTransformMaxBytes)
    throw new AppError(
      "payload_too_large",
      `Thumbnails are made of images up to ${limits.imageTransformMaxBytes} bytes.`,
    );
  const bytes = await makeOnce(
    key,
    async () => {
      await checkPixels(env, row);
      const original = await env.MEDIA.get(row.objectKey);
      if (!original) throw new AppError("not_found", "The file's bytes are missing.");
      const p = thumbPresets[preset];
      let made: Uint8Array;
      try {
        made = await transform(
          env,
          original.body,
          { width: p.width, height: p.height, fit: p.fit },
          contentType as ImageOutputOptions["format"],
        );
      } catch (e) {
        if (isImagesError(e)) throw new AppError("unsupported_media_type", "The image could not be decoded.");
        throw e;
      }
      await env.MEDIA.put(key, made, { httpMetadata: { contentType } });
      if (!(await stillThere())) {
        await env.MEDIA.delete(key);
        throw new AppError("not_found", "No such file.");
      }
      return made;
    },
    waitUntil,
  );
  headers.set("content-length", String(bytes.byteLength));
  return new Response(bytes, { headers });
}

/**
 * A URL of the `preset` thumbnail of `row` (for lists such as the admin console): the plain URL
 * for a public file, a signed one (valid `expiresIn` seconds, for that preset only) for a private
 * file; null when the file is not an image.
 */
export async function thumbnailUrl(
  config: Config,
  base: string,
  row: FileRow,
  preset: ThumbPreset,
  expiresIn: number = limits.signedUrlDefaultSec,
  now = Date.now(),
): Promise<string | null> {
  if (!isImageInput(row.contentType)) return null;
  if (row.visibility === "public") return `${base}/v1/files/${row.id}/content?thumb=${preset}`;
  return signedUrl(config, base, row.id, Math.floor(now / 1000) + expiresIn, preset);
}

/** Enqueues the after-upload job (dimensions, placeholder) for an image file. */
export async function afterUpload(env: Env, file: { id: string; contentType: string }): Promise<void> {
  if (!isImageInput(file.contentType)) return;
  try {
    await enqueue<FilesImageJob>(env, { type: "files.image", fileId: file.id });
  } catch (e) {
    // The file is stored; it only lacks width/height/placeholder.
    console.error("files: queueing the image job failed:", (e as Error).message);
  }
}

const base64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));

/**
 * The `files.image` job: width and height (EXIF orientation applied) and a ThumbHash of a ready
 * image file. An image over the pixel limit is never decoded; an image the binding cannot read
 * gets none (acknowledged, not retried); R2 or binding outages throw, so the queue retries.
 */
export async function analyzeImage(env: Env, fileId: string): Promise<void> {
  const db = primaryDb(env.DB);
  const row = await getFile(db, fileId);
  if (!row || !isImageInput(row.contentType) || row.width !== null || row.size > limits.imageTransformMaxBytes) return;
  try {
    await checkPixels(env, row);
  } catch (e) {
    // Over the pixel limit, or no readable header: no dimensions, never decoded. Missing bytes retry.
    if (e instanceof AppError && e.code !== "not_found") {
      console.warn(`files.image: ${fileId} was not analyzed: ${e.detail}`);
      return;
    }
    throw e;
  }
  const read = async () => {
    const obj = await env.MEDIA.get(row.objectKey);
    if (!obj) throw new Error(`files.image: the bytes of ${fileId} are missing`);
    return obj.body;
  };
  let info: ImageInfoResponse;
  let small: Uint8Array;
  try {
    info = await env.IMAGES.info(await read());
    if (!("width" in info)) return; // SVG: no pixel size
    const max = limits.placeholderMaxPx;
    small = await transform(env, await read(), { width: max, height: max, fit: "scale-down" }, "image/png");
  } catch (e) {
    if (isImagesError(e)) {
      console.warn(`files.image: ${fileId} (${row.contentType}) could not be decoded; no dimensions`);
      return;
    }
    throw e;
  }
  const px = await decodePng(small);
  let { width, height } = info;
  // The rendition is upright (transforms apply the EXIF orientation); when its shape disagrees
  // with the stored pixels' shape, the orientation turns the image by 90°.
  if (px && ((width > height && px.width < px.height) || (width < height && px.width > px.height)))
    [width, height] = [height, width];
  const placeholder =
    px && px.width <= 100 && px.height <= 100 ? base64(rgbaToThumbHash(px.width, px.height, px.rgba)) : null;
  await setImageMeta(db, fileId, width, height, placeholder);
}

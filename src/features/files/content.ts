/** Serving file bytes: ETag, If-None-Match, Range, Cache-Control and a safe Content-Disposition. */
import { AppError } from "../../errors";
import type { FileRow } from "./objects";
import { isKnownMediaType } from "./sniff";

export type ByteRange = { offset: number; length: number };

/**
 * Parses a single `bytes=` range against `size`. Returns null to serve the whole file (no header,
 * a syntax it ignores, or several ranges: multi-range is optional and answered with 200),
 * "unsatisfiable" for a range outside the file (416).
 */
export function parseRange(header: string | null | undefined, size: number): ByteRange | "unsatisfiable" | null {
  if (!header) return null;
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return null;
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return "unsatisfiable";
    const length = Math.min(n, size);
    return { offset: size - length, length };
  }
  const start = Number(m[1]);
  if (start >= size) return "unsatisfiable";
  const end = m[2] === "" ? size - 1 : Number(m[2]);
  if (end < start) return null;
  return { offset: start, length: Math.min(end, size - 1) - start + 1 };
}

/** True when an `If-None-Match` list names `etag` (weak comparison) or is `*`. */
export function noneMatch(header: string | null | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === "*") return true;
  return header.split(",").some((t) => t.trim().replace(/^W\//, "") === etag);
}

/**
 * Verified media (a known media type whose signature was checked at upload) is served inline with
 * its type; every other file downloads as `application/octet-stream`, so no user file is ever
 * rendered as HTML, SVG or script from the API's origin.
 */
const isVerifiedMedia = (contentType: string) => isKnownMediaType(contentType);

/** The Content-Type a file is served with: its own for verified media, else `application/octet-stream`. */
const servedType = (contentType: string) => (isVerifiedMedia(contentType) ? contentType : "application/octet-stream");

/** `inline` only for verified media; everything else downloads. */
function contentDisposition(name: string, contentType: string): string {
  const kind = isVerifiedMedia(contentType) ? "inline" : "attachment";
  const fallback = name.replace(/[^\x20-\x7e]|["\\%;]/gu, "_");
  const encoded = encodeURIComponent(name).replace(
    /['()*]/g,
    (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `${kind}; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

/** How the caller got access; decides Cache-Control. */
export type Access = "public" | "private";

/** Builds the content response for `row` from R2. HEAD requests read only the object's metadata. */
export async function serveContent(bucket: R2Bucket, row: FileRow, req: Request, access: Access): Promise<Response> {
  const etag = `"${row.etag}"`;
  const headers = new Headers({
    etag,
    "cache-control": access === "public" ? "public, max-age=31536000, immutable" : "private, no-cache",
    "content-type": servedType(row.contentType),
    "content-disposition": contentDisposition(row.name, row.contentType),
    "content-security-policy": "default-src 'none'; sandbox",
    "x-content-type-options": "nosniff",
    "accept-ranges": "bytes",
  });
  if (noneMatch(req.headers.get("if-none-match"), etag)) return new Response(null, { status: 304, headers });

  const ifRange = req.headers.get("if-range");
  const range = ifRange && ifRange.trim() !== etag ? null : parseRange(req.headers.get("range"), row.size);
  if (range === "unsatisfiable") {
    throw new AppError("range_not_satisfiable", `The file has ${row.size} bytes.`, {
      headers: { "content-range": `bytes */${row.size}` },
    });
  }
  if (range) headers.set("content-range", `bytes ${range.offset}-${range.offset + range.length - 1}/${row.size}`);
  const status = range ? 206 : 200;
  headers.set("content-length", String(range ? range.length : row.size));
  if (req.method === "HEAD") {
    if (!(await bucket.head(row.objectKey))) throw new AppError("not_found", "The file's bytes are missing.");
    return new Response(null, { status, headers });
  }
  const obj = await bucket.get(row.objectKey, range ? { range } : {});
  if (!obj) throw new AppError("not_found", "The file's bytes are missing.");
  return new Response(obj.body, { status, headers });
}

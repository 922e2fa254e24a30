/** Files: all D1 access, R2 object lifecycle, signed URLs, account deletion and cleanup. */

import { and, desc, eq, getTableColumns, isNull, lt, or, type SQL, sql, type Table } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { type Config, limits } from "../../config";
import { type Database, runBatch } from "../../db";
import { files, fileTrash, uploads } from "../../db/schema";
import { AppError } from "../../errors";
import { b64url, fromB64url, hmac, hmacVerify, purposeKey } from "../../lib/crypto";
import { newId, nowIso } from "../../lib/ids";
import { afterId, keysetPage } from "../../lib/keyset";
import type { DeletionHook, ScheduledTask } from "../../lifecycle";
import { clearAvatarStatement, rowWhileUserExists, userExists, userExistsSql } from "../auth";
import { fileCreated, fileListened } from "./hooks";
import { type FileRow, filesDeletionPlan, purgeObjects } from "./objects";
import { planStream, type ScrubPlan, scrubPlan } from "./privacy";
import type { FileJson, Visibility } from "./schemas";
import { assertSignature, isKnownMediaType, isMediaType, normalizeType, SNIFF_BYTES } from "./sniff";
import { Meter, prepend, putKnownLength, putUnknownLength, splitHead, through } from "./storage";
import { mayUploadToTeamSql, teamUploadRefusal } from "./team-access";

/** R2 key of a file: derived from the server-made id only, so names cannot traverse or collide. */
const objectKeyOf = (fileId: string) => `f/${fileId}`;

/** A display name safe to store and echo: no path, no control characters, bounded length. */
export function safeName(raw: string | null | undefined): string {
  const base = (raw ?? "").split(/[\\/]/).pop() ?? "";
  // Cut by code points: slicing UTF-16 units could split an emoji into a lone surrogate.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: a stored name must not hold control characters.
  const clean = Array.from(base.replace(/[\u0000-\u001f\u007f]/g, "").trim())
    .slice(0, limits.fileNameMax)
    .join("")
    .trim();
  return clean && clean !== "." && clean !== ".." ? clean : "file";
}

/**
 * The stored type for a declared one: `application/octet-stream` when missing; 415 for a media
 * type whose signature Outpost does not know (it could not be checked).
 */
export function acceptedType(declared: string | null | undefined): string {
  const t = normalizeType(declared);
  if (!t) return "application/octet-stream";
  if (isMediaType(t) && !isKnownMediaType(t))
    throw new AppError("unsupported_media_type", `Files of type ${t} are not accepted.`);
  return t;
}

/** Base URL of links to this API. */
export const apiBase = (config: Config, requestUrl: string) => config.publicUrl ?? new URL(requestUrl).origin;

export function toFile(row: FileRow, base: string): FileJson {
  return {
    id: row.id,
    name: row.name,
    contentType: row.contentType,
    size: row.size,
    visibility: row.visibility,
    ownerId: row.ownerId,
    createdAt: row.createdAt,
    url: `${base}/v1/files/${row.id}/content`,
    sha256: row.sha256,
    width: row.width,
    height: row.height,
    placeholder: row.placeholder,
    ...(row.teamId === null ? {} : { teamId: row.teamId }),
  };
}

export interface NewFile {
  ownerId: string;
  name: string;
  contentType: string;
  visibility: Visibility;
  /** Metadata removal on the way in (files/privacy.ts), by the bytes' real type; absent: stored as sent. */
  strip?: boolean;
  /** The team the file belongs to: the owner must be its member, admin or owner (checked in the insert). */
  teamId?: string | null;
}

// --- storage quota ----------------------------------------------------------------------------

/**
 * Bytes an account holds against its quota: its files (a pending file counts the bytes it
 * reserved) plus the declared Upload-Length of its unfinished tus uploads. Both sums read only
 * the owner's entries of a covering index (files_owner_idx, uploads_owner_idx).
 */
export const storageUsed = (ownerId: string) =>
  sql<number>`((SELECT coalesce(sum(${files.size}), 0) FROM ${files} WHERE ${files.ownerId} = ${ownerId})
    + (SELECT coalesce(sum(${uploads.uploadLength}), 0) FROM ${uploads}
       WHERE ${uploads.ownerId} = ${ownerId} AND ${uploads.completedAt} IS NULL))`;

/** Bytes of the quota still free (negative when the quota was lowered below the usage). */
export const storageLeft = (quota: number, ownerId: string) => sql<number>`(${quota} - ${storageUsed(ownerId)})`;

/**
 * INSERT ... SELECT of one row of `table` that is written only while its owner exists and `when`
 * holds (both checked inside the statement, so concurrent writers cannot slip between a check and
 * the insert: D1 runs one write at a time). Values may be SQL expressions.
 */
export function insertForOwnerIf<T extends Table>(
  db: Database,
  table: T,
  ownerId: string,
  values: Record<string, unknown>,
  when: SQL,
) {
  return db.insert(table).select(rowWhileUserExists(db, table, ownerId, values, when) as never);
}

/**
 * Why a quota-checked insert wrote nothing: the account is gone (401), or the upload (`need`
 * bytes; null = length unknown) does not fit in what is left of the quota (413).
 */
export async function quotaRefusal(
  db: Database,
  quota: number,
  ownerId: string,
  need: number | null,
): Promise<AppError> {
  const row = await db.get<{ used: number; present: number }>(
    sql`SELECT ${storageUsed(ownerId)} AS used, ${userExistsSql(ownerId)} AS present`,
  );
  if (!row?.present) return new AppError("unauthorized", "This account no longer exists.");
  const left = Math.max(0, quota - Number(row.used));
  const what = `${left} bytes of your ${quota}-byte storage quota are left`;
  const detail = need === null ? `Only ${what}.` : `This upload needs ${need} bytes, but only ${what}.`;
  return new AppError("quota_exceeded", `${detail} Delete files or unfinished uploads to make room.`);
}

/**
 * Writes the `pending` row of a new file and reserves its bytes in one statement: `length` when
 * the body's length is known (refused when it does not fit), else what is left of the quota, at
 * most `cap`. Returns the reserved bytes: the upload may stream that many.
 */
async function reservePending(
  db: Database,
  quota: number,
  row: Omit<FileRow, "size" | "sha256" | "etag" | "status" | "width" | "height" | "placeholder">,
  length: number | null,
  cap: number,
): Promise<number> {
  const left = storageLeft(quota, row.ownerId);
  // A team file: the uploader's membership is checked in the same statement as the quota.
  const member = row.teamId ? sql` AND ${mayUploadToTeamSql(row.teamId, row.ownerId)}` : sql``;
  const size = length ?? sql`max(0, min(${cap}, ${left}))`;
  const inserted = await insertForOwnerIf(
    db,
    files,
    row.ownerId,
    { ...row, size, sha256: null, etag: "", status: "pending", width: null, height: null, placeholder: null },
    sql`${left} >= ${length ?? 0}${member}`,
  )
    .returning({ size: files.size })
    .get();
  if (!inserted)
    throw (
      (row.teamId && (await teamUploadRefusal(db, row.teamId, row.ownerId))) ||
      (await quotaRefusal(db, quota, row.ownerId, length))
    );
  return inserted.size;
}

/**
 * Streams `body` into R2 under a fresh id and records the file. With `length` known the bytes go
 * in one put; otherwise as a multipart upload in equal parts. Before reading the body, the
 * `pending` row reserves the bytes against the owner's quota (`quota`): a known length that does
 * not fit is refused unread; an unknown one may stream what is left (at most `bound`, e.g. the
 * Content-Length of a multipart form). The row stays `pending` while the bytes stream, so a
 * failure leaves something the cleanup task can find; once stored, its size becomes the real one.
 */
export async function storeFile(
  env: Env,
  db: Database,
  quota: number,
  meta: NewFile,
  body: ReadableStream<Uint8Array>,
  length: number | null,
  bound: number | null = null,
): Promise<FileRow> {
  if (length !== null && length > limits.fileMaxBytes)
    throw new AppError(
      "payload_too_large",
      `Files are limited to ${limits.fileMaxBytes} bytes; use /v1/uploads for larger ones.`,
    );
  const id = newId();
  const key = objectKeyOf(id);
  const reserved = await reservePending(
    db,
    quota,
    {
      id,
      ownerId: meta.ownerId,
      objectKey: key,
      name: meta.name,
      contentType: meta.contentType,
      visibility: meta.visibility,
      createdAt: nowIso(),
      teamId: meta.teamId ?? null,
    },
    length,
    Math.min(limits.fileMaxBytes, bound ?? Infinity),
  );
  // The signature is checked before any R2 write, so a lie costs none.
  let head: Awaited<ReturnType<typeof splitHead>>;
  let scrub: ScrubPlan | null;
  try {
    head = await splitHead(body, SNIFF_BYTES);
    assertSignature(meta.contentType, head.head);
    scrub = meta.strip ? scrubPlan(head.head, meta.visibility) : null;
  } catch (e) {
    await dropPending(db, id);
    throw e instanceof AppError ? e : new AppError("bad_request", "The upload was interrupted.");
  }
  const meter = new Meter(reserved, true, (bytes) =>
    bytes > limits.fileMaxBytes
      ? new AppError(
          "payload_too_large",
          `The file is larger than ${limits.fileMaxBytes} bytes; use /v1/uploads for larger ones.`,
        )
      : new AppError(
          "quota_exceeded",
          `The file is larger than the ${reserved} bytes left of your ${quota}-byte storage quota. ` +
            "Delete files or unfinished uploads to make room.",
        ),
  );
  // Scrubbing keeps every byte's offset (same length), and the SHA-256 is of the stored bytes.
  const sent = prepend(head.head, head.rest);
  const stream = through(scrub ? through(sent, planStream(scrub)) : sent, meter.stream);
  const options: R2PutOptions = { httpMetadata: { contentType: meta.contentType } };
  try {
    if (length !== null) await putKnownLength(env.MEDIA, key, stream, length, options);
    else await putUnknownLength(env.MEDIA, key, stream, limits.uploadPartBytes, options);
  } catch (e) {
    await discardPending(env, db, id, key);
    if (meter.error) throw meter.error;
    if (e instanceof AppError) throw e;
    if (!meter.finished || (length !== null && meter.bytes !== length))
      throw new AppError("bad_request", "The upload was interrupted or its length did not match Content-Length.");
    throw e; // the client sent everything: R2 failed (500)
  }
  const sha256 = await meter.sha256();
  const ready = await db
    .update(files)
    .set({ status: "ready", size: meter.bytes, sha256, etag: sha256 })
    .where(eq(files.id, id))
    .returning({ ...getTableColumns(files), listened: fileListened() })
    .get();
  if (!ready) {
    // The pending row went while the bytes streamed (the account was deleted): so do the bytes.
    await db.insert(fileTrash).values({ objectKey: key, createdAt: nowIso() }).onConflictDoNothing();
    await purgeObjects(env, db, [key]);
    if (await accountGone(db, meta.ownerId)) throw new AppError("unauthorized", "This account no longer exists.");
    if (meta.teamId) throw new AppError("not_found", "No such team.");
    throw new AppError("internal", "The file row vanished while uploading.");
  }
  const { listened, ...row } = ready;
  await fileCreated(env, listened);
  return row;
}

const accountGone = async (db: Database, userId: string) => !(await userExists(db, userId));

/** Removes a pending row whose bytes never reached R2 (its reservation goes with it). */
async function dropPending(db: Database, id: string): Promise<void> {
  try {
    await db.delete(files).where(and(eq(files.id, id), eq(files.status, "pending")));
  } catch (e) {
    console.error("dropping a refused upload's row failed (cleanup will retry):", (e as Error).message);
  }
}

async function discardPending(env: Env, db: Database, id: string, key: string): Promise<void> {
  try {
    await env.MEDIA.delete(key);
    await db.delete(files).where(eq(files.id, id));
  } catch (e) {
    console.error("discarding a failed upload failed (cleanup will retry):", (e as Error).message);
  }
}

/** A ready file by id, or null. */
export async function getFile(db: Database, id: string): Promise<FileRow | null> {
  return (
    (await db
      .select()
      .from(files)
      .where(and(eq(files.id, id), eq(files.status, "ready")))
      .get()) ?? null
  );
}

/** A user's ready files outside teams, newest first; `cursor` is the last id of the previous page. */
export async function listFiles(
  db: Database,
  ownerId: string,
  limit: number,
  cursor: string | null,
): Promise<{ rows: FileRow[]; nextCursor: string | null }> {
  const rows = await db
    .select()
    .from(files)
    .where(and(eq(files.ownerId, ownerId), eq(files.status, "ready"), isNull(files.teamId), afterId(files.id, cursor)))
    .orderBy(desc(files.id))
    .limit(limit + 1)
    .all();
  const { page, nextCursor } = keysetPage(rows, limit, (r) => r.id);
  return { rows: page, nextCursor };
}

/** Records a finished file (tus completion); a second call for the same id does nothing. */
export function insertReadyFile(db: Database, row: Omit<FileRow, "status" | "width" | "height" | "placeholder">) {
  return db
    .insert(files)
    .values({ ...row, status: "ready" })
    .onConflictDoNothing()
    .returning({ listened: fileListened() });
}

/** Records an image's dimensions and placeholder (the after-upload job). */
export async function setImageMeta(
  db: Database,
  id: string,
  width: number,
  height: number,
  placeholder: string | null,
): Promise<void> {
  await db.update(files).set({ width, height, placeholder }).where(eq(files.id, id));
}

/** Deletes a file: the row goes (and avatars pointing at it are cleared) in one batch, then the object. */
export async function deleteFile(
  env: Env,
  db: Database,
  row: FileRow,
  also: BatchItem<"sqlite">[] = [],
): Promise<void> {
  await runBatch(db, [
    db.insert(fileTrash).values({ objectKey: row.objectKey, createdAt: nowIso() }).onConflictDoNothing(),
    db.delete(files).where(eq(files.id, row.id)),
    clearAvatarStatement(db, row.id),
    ...also,
  ]);
  await purgeObjects(env, db, [row.objectKey]);
}

// --- signed URLs ----------------------------------------------------------------------------

/** What a signed URL signs: the file, the expiry and, for a URL to one thumbnail only, its preset. */
const signedData = (id: string, exp: number, thumb?: string) =>
  `file-url\u0000${id}\u0000${exp}${thumb ? `\u0000${thumb}` : ""}`;

/**
 * A content URL that works without a token until `exp` (unix seconds). With `thumb`, it serves
 * that thumbnail preset only; without, the original and (adding `&thumb=`) any thumbnail.
 */
export async function signedUrl(
  config: Config,
  base: string,
  id: string,
  exp: number,
  thumb?: string,
): Promise<string> {
  const sig = b64url(await hmac(await purposeKey(config.jwtSecret, "file-url"), signedData(id, exp, thumb)));
  return `${base}/v1/files/${id}/content?exp=${exp}&sig=${sig}${thumb ? `&thumb=${thumb}` : ""}`;
}

/**
 * Checks a signed URL's `exp`/`sig` for `id` (constant-time) and the requested `thumb`: a URL
 * signed for a preset, or one signed for the original; 403 when tampered with or expired.
 */
export async function verifySignedUrl(
  config: Config,
  id: string,
  exp: string,
  sig: string,
  now = Date.now(),
  thumb?: string,
): Promise<void> {
  const bad = () => new AppError("forbidden", "The signed URL is invalid.");
  if (!/^\d{1,12}$/.test(exp) || !/^[A-Za-z0-9_-]{43}$/.test(sig)) throw bad();
  const key = await purposeKey(config.jwtSecret, "file-url");
  const mac = fromB64url(sig);
  const ok =
    (thumb !== undefined && (await hmacVerify(key, signedData(id, Number(exp), thumb), mac))) ||
    (await hmacVerify(key, signedData(id, Number(exp)), mac));
  if (!ok) throw bad();
  if (Number(exp) * 1000 <= now) throw new AppError("forbidden", "The signed URL has expired.");
}

// --- extension points -----------------------------------------------------------------------

/** PATCH /v1/me avatarFileId: only the caller's own ready files outside teams. */
export async function isOwnFile(db: Database, userId: string, fileId: string): Promise<boolean> {
  const row = await getFile(db, fileId);
  return row !== null && row.ownerId === userId && row.teamId === null;
}

/** A chat attachment: a fully uploaded file that is public or the sender's own. */
export async function mayAttachFile(db: Database, userId: string, fileId: string): Promise<boolean> {
  const row = await db
    .select({ id: files.id })
    .from(files)
    .where(
      and(
        eq(files.id, fileId),
        eq(files.status, "ready"),
        or(eq(files.visibility, "public"), eq(files.ownerId, userId)),
      ),
    )
    .get();
  return row !== undefined;
}

/** Account deletion: rows go in the batch (their keys into the trash), objects after it commits. */
export const filesDeletionHook: DeletionHook = ({ env, db, userId }) =>
  filesDeletionPlan(env, db, eq(files.ownerId, userId));

/** Cleanup: abandoned `pending` uploads and objects whose rows are already gone. */
export const filesCleanup: ScheduledTask = async (env, db, now) => {
  const cutoff = nowIso(now.getTime() - limits.filePendingGraceSec * 1000);
  const stale = await db
    .select({ id: files.id, key: files.objectKey })
    .from(files)
    .where(and(eq(files.status, "pending"), lt(files.createdAt, cutoff)))
    .limit(500)
    .all();
  for (const r of stale) {
    await env.MEDIA.delete(r.key);
    await db.delete(files).where(and(eq(files.id, r.id), eq(files.status, "pending")));
  }
  const trash = await db.select({ key: fileTrash.objectKey }).from(fileTrash).limit(1000).all();
  await purgeObjects(
    env,
    db,
    trash.map((t) => t.key),
  );
};

/** A fresh id for a file created elsewhere (tus), with its key. */
export function newFileIdentity(): { id: string; key: string } {
  const id = newId();
  return { id, key: objectKeyOf(id) };
}

// --- administration ---------------------------------------------------------------------------

/** Stored files and their bytes (of one owner, or all): one statement, for the admin's batch. */
export function storageUsage(db: Database, ownerId?: string) {
  return db
    .select({ files: sql<number>`count(*)`, bytes: sql<number>`coalesce(sum(${files.size}), 0)` })
    .from(files)
    .where(and(eq(files.status, "ready"), ownerId === undefined ? undefined : eq(files.ownerId, ownerId)));
}

/** Every account's ready files, newest first (the admin console); `cursor` is the last id of the previous page. */
export async function listAllFiles(
  db: Database,
  limit: number,
  cursor: string | null,
): Promise<{ rows: FileRow[]; nextCursor: string | null }> {
  const rows = await db
    .select()
    .from(files)
    // `+status`: not through files_status_idx, which would sort every ready file; the primary key
    // walks newest first and stops after a page (pending rows are few and short-lived).
    .where(and(sql`+${files.status} = 'ready'`, afterId(files.id, cursor)))
    .orderBy(desc(files.id))
    .limit(limit + 1)
    .all();
  const { page, nextCursor } = keysetPage(rows, limit, (r) => r.id);
  return { rows: page, nextCursor };
}

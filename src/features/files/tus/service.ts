/**
 * tus uploads on R2 multipart uploads. R2 wants every part but the last the same size, while
 * clients send chunks of any size, so each PATCH cuts `tail + body` into full parts and keeps the
 * odd rest as a new tail object in R2 (`u/<uploadId>/<received>-<random>`), never in memory across
 * requests. State lives in D1: `received`, the parts' etags and the tail's key.
 */
import { and, asc, eq, lte, sql } from "drizzle-orm";
import { limits } from "../../../config";
import { type Database, runBatch } from "../../../db";
import { files, uploadParts, uploads } from "../../../db/schema";
import { AppError } from "../../../errors";
import { randomToken } from "../../../lib/crypto";
import { newId, nowIso } from "../../../lib/ids";
import type { DeletionHook, ScheduledTask, TeamDeletionHook } from "../../../lifecycle";
import { fileCreated } from "../hooks";
import { type AnyScrubState, initialPlanState, SCRUB_PENDING, scrubberFor, scrubPlan } from "../privacy";
import type { Visibility } from "../schemas";
import { insertForOwnerIf, insertReadyFile, newFileIdentity, quotaRefusal, storageLeft } from "../service";
import { assertSignature, SNIFF_BYTES } from "../sniff";
import { Meter, PartBuffer, prepend, splitHead, through } from "../storage";
import { mayUploadToTeamSql, teamUploadRefusal } from "../team-access";

export type UploadRow = typeof uploads.$inferSelect;

export interface NewUpload {
  ownerId: string;
  length: number;
  name: string;
  contentType: string;
  visibility: Visibility;
  /**
   * Metadata removal as the bytes arrive (files/privacy.ts): `SCRUB_PENDING` decides the scrubber
   * by the real type once the file's first bytes are in; null: stored as sent.
   */
  scrub: typeof SCRUB_PENDING | null;
  /** A team file (members, admins and the owner may upload); null: the uploader's own. */
  teamId: string | null;
}

const tailPrefix = (uploadId: string) => `u/${uploadId}/`;

/**
 * Starts an upload: a D1 row and, for a non-empty file, an R2 multipart upload under the future
 * file's key. The row counts its whole Upload-Length against the owner's storage quota until it
 * completes (then the file counts it) or goes; it is written only if that length fits in what is
 * left (checked in the INSERT itself, so concurrent creations cannot pass the quota together).
 * A refused creation aborts its multipart upload: nothing stays in R2.
 */
export async function createUpload(
  env: Env,
  db: Database,
  quota: number,
  u: NewUpload,
  now = Date.now(),
): Promise<UploadRow> {
  const file = newFileIdentity();
  const mp =
    u.length > 0
      ? await env.MEDIA.createMultipartUpload(file.key, { httpMetadata: { contentType: u.contentType } })
      : null;
  const row = {
    id: newId(now),
    ownerId: u.ownerId,
    fileId: file.id,
    objectKey: file.key,
    r2UploadId: mp?.uploadId ?? null,
    uploadLength: u.length,
    received: 0,
    tailKey: null,
    name: u.name,
    contentType: u.contentType,
    visibility: u.visibility,
    completedAt: null,
    scrub: u.scrub,
    expiresAt: nowIso(now + limits.uploadTtlSec * 1000),
    createdAt: nowIso(now),
    teamId: u.teamId,
  } satisfies UploadRow;
  let created: UploadRow | undefined;
  try {
    // Into a team: the uploader's role is checked in the same statement as the quota.
    const member = u.teamId ? sql` AND ${mayUploadToTeamSql(u.teamId, u.ownerId)}` : sql``;
    created = await insertForOwnerIf(
      db,
      uploads,
      u.ownerId,
      row,
      sql`${storageLeft(quota, u.ownerId)} >= ${u.length}${member}`,
    )
      .returning()
      .get();
  } catch (e) {
    await mp?.abort().catch(() => {});
    throw e;
  }
  if (!created) {
    await mp?.abort().catch(() => {});
    throw (
      (u.teamId && (await teamUploadRefusal(db, u.teamId, u.ownerId))) ||
      (await quotaRefusal(db, quota, u.ownerId, u.length))
    );
  }
  return created;
}

/** The caller's upload, or 404 (others' uploads are not revealed). */
export async function ownedUpload(db: Database, id: string, ownerId: string): Promise<UploadRow> {
  const row = await db
    .select()
    .from(uploads)
    .where(and(eq(uploads.id, id), eq(uploads.ownerId, ownerId)))
    .get();
  if (!row) throw new AppError("not_found", "No such upload.");
  return row;
}

export const isExpired = (up: UploadRow, now = Date.now()) =>
  up.completedAt === null && Date.parse(up.expiresAt) <= now;

/**
 * Appends a PATCH body at `up.received`. Full parts go to R2 as they fill; the rest becomes the new
 * tail. A body that breaks off midway keeps what arrived (tus: the client asks for the offset and
 * resumes). The last byte completes the multipart upload and records the file.
 */
export async function appendToUpload(
  env: Env,
  db: Database,
  up: UploadRow,
  body: ReadableStream<Uint8Array> | null,
): Promise<UploadRow> {
  const partSize = limits.uploadPartBytes;
  /**
   * An R2 step failed: when another request moved the upload on meanwhile (it completed the
   * multipart upload or replaced the tail this one read), that is the 409 of a lost race, not a 500.
   */
  const lostRace = async (e: unknown): Promise<never> => {
    const now = await db.select({ received: uploads.received }).from(uploads).where(eq(uploads.id, up.id)).get();
    if (!now || now.received !== up.received)
      throw new AppError("conflict", "Another request changed this upload; ask for its offset (HEAD) and resume.");
    throw e;
  };
  const parts = await db
    .select()
    .from(uploadParts)
    .where(eq(uploadParts.uploadId, up.id))
    .orderBy(asc(uploadParts.partNumber))
    .all();
  const fileStart = parts.length * partSize;
  let tail: Uint8Array | null = null;
  if (up.tailKey) {
    const obj = await env.MEDIA.get(up.tailKey);
    if (!obj || obj.size !== up.received - fileStart)
      return lostRace(new AppError("internal", "The upload's buffered bytes are missing."));
    tail = new Uint8Array(await obj.arrayBuffer());
  }
  let source = prepend(tail, body);
  // Metadata scrubbing (files/privacy.ts) of the new bytes, in place; its state at `received` is kept
  // with the upload. The tail was scrubbed when it arrived, unless the plan was still pending.
  let pending = up.scrub === SCRUB_PENDING;
  let scrubber = up.scrub && !pending ? scrubberFor(JSON.parse(up.scrub) as AnyScrubState) : null;
  let scrubbed = tail?.byteLength ?? 0;
  if (fileStart === 0) {
    // The file's head is here (tail + body): check its signature once enough of it arrived.
    let split: Awaited<ReturnType<typeof splitHead>>;
    try {
      split = await splitHead(source, SNIFF_BYTES);
    } catch {
      return up; // the client went away before the head was complete: nothing new to keep
    }
    if (split.head.byteLength >= SNIFF_BYTES || split.head.byteLength === up.uploadLength) {
      try {
        assertSignature(up.contentType, split.head);
        if (pending) {
          // The plan by the real type; the raw bytes held in the tail so far are scrubbed now.
          const plan = scrubPlan(split.head, up.visibility);
          scrubber = plan ? scrubberFor(initialPlanState(plan)) : null;
          pending = false;
          scrubbed = 0;
        }
      } catch (e) {
        await terminateUpload(env, db, up);
        throw e;
      }
    }
    source = prepend(split.head, split.rest);
  }
  const meter = new Meter(up.uploadLength - fileStart, false);
  const mp = up.r2UploadId ? env.MEDIA.resumeMultipartUpload(up.objectKey, up.r2UploadId) : null;
  const uploadPart = (n: number, bytes: Uint8Array) => {
    if (!mp) throw new AppError("internal", "The upload has no multipart upload.");
    return mp.uploadPart(n, bytes).catch(lostRace);
  };
  const buf = new PartBuffer(partSize);
  const added: R2UploadedPart[] = [];
  const store = async (bytes: Uint8Array) => {
    for (const part of buf.push(bytes)) added.push(await uploadPart(parts.length + added.length + 1, part));
  };
  const reader = through(source, meter.stream).getReader();
  for (;;) {
    let next: ReadableStreamReadResult<Uint8Array>;
    try {
      next = await reader.read();
    } catch (e) {
      if (meter.error) throw meter.error;
      if (e instanceof AppError) throw e;
      break; // the client went away: keep what arrived
    }
    if (next.done) break;
    if (!scrubber) {
      await store(next.value);
      continue;
    }
    let chunk = next.value;
    if (scrubbed > 0) {
      const k = Math.min(scrubbed, chunk.byteLength);
      await store(chunk.subarray(0, k));
      scrubbed -= k;
      chunk = chunk.subarray(k);
    }
    for (const b of scrubber.push(chunk)) await store(b);
  }
  if (scrubber) {
    // The whole file is in: release what the scrubber holds. Otherwise held bytes are not
    // acknowledged (the Upload-Offset stops before them) and the client sends them again.
    const all = meter.finished && fileStart + meter.bytes === up.uploadLength;
    for (const b of all ? scrubber.end() : scrubber.pause()) await store(b);
  }

  const received = fileStart + added.length * partSize + buf.size;
  if (received === up.received && up.uploadLength > 0) return up; // nothing new arrived
  const complete = received === up.uploadLength;
  let tailKey: string | null = null;
  let etag = "";
  if (complete) {
    const rest = buf.take();
    if (mp) {
      if (rest.byteLength) added.push(await uploadPart(parts.length + added.length + 1, rest));
      etag = (
        await mp.complete([...parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag })), ...added]).catch(lostRace)
      ).etag;
    } else {
      etag = (await env.MEDIA.put(up.objectKey, rest, { httpMetadata: { contentType: up.contentType } })).etag;
    }
  } else if (buf.size) {
    // Unique per request: a PATCH that loses the compare-and-set below deletes only its own tail,
    // never the winner's (same offset, same length would otherwise mean the same key).
    tailKey = `${tailPrefix(up.id)}${received}-${randomToken(8)}`;
    await env.MEDIA.put(tailKey, buf.take());
  }

  const now = nowIso();
  const res = await runBatch(db, [
    ...added.map((p) =>
      db
        .insert(uploadParts)
        .values({ uploadId: up.id, partNumber: p.partNumber, etag: p.etag })
        .onConflictDoUpdate({ target: [uploadParts.uploadId, uploadParts.partNumber], set: { etag: p.etag } }),
    ),
    // Compare-and-set on `received`: of two PATCHes at the same offset only one advances it.
    db
      .update(uploads)
      .set({
        received,
        tailKey,
        completedAt: complete ? now : null,
        scrub: pending ? SCRUB_PENDING : scrubber ? JSON.stringify(scrubber.snapshot()) : null,
      })
      .where(and(eq(uploads.id, up.id), eq(uploads.received, up.received)))
      .returning(),
    ...(complete
      ? [
          insertReadyFile(db, {
            id: up.fileId,
            ownerId: up.ownerId,
            objectKey: up.objectKey,
            name: up.name,
            contentType: up.contentType,
            size: up.uploadLength,
            visibility: up.visibility,
            sha256: null,
            etag,
            createdAt: now,
            teamId: up.teamId,
          }),
        ]
      : []),
  ]).catch(async (e: unknown) => {
    // Nothing was recorded (e.g. the upload or its account went meanwhile: foreign keys): drop what
    // this request put in R2, and answer like a lost race when the upload moved or vanished.
    if (tailKey) await env.MEDIA.delete(tailKey).catch(() => {});
    try {
      return await lostRace(e);
    } catch (err) {
      if (complete && err instanceof AppError && err.code === "conflict")
        await env.MEDIA.delete(up.objectKey).catch(() => {});
      throw err;
    }
  });
  const updated = (res[added.length] as UploadRow[])[0];
  if (!updated) {
    if (tailKey) await env.MEDIA.delete(tailKey);
    throw new AppError("conflict", "Another request changed this upload; ask for its offset (HEAD) and resume.");
  }
  if (complete) await fileCreated(env, (res[added.length + 1] as { listened: unknown }[])[0]?.listened);
  if (up.tailKey && up.tailKey !== tailKey) await env.MEDIA.delete(up.tailKey);
  return updated;
}

async function deleteTails(env: Env, uploadId: string): Promise<void> {
  for (;;) {
    const page = await env.MEDIA.list({ prefix: tailPrefix(uploadId), limit: 1000 });
    if (page.objects.length) await env.MEDIA.delete(page.objects.map((o) => o.key));
    if (!page.truncated) return;
  }
}

/** tus termination: the upload and its buffered bytes go; a finished file stays. */
export async function terminateUpload(env: Env, db: Database, up: UploadRow): Promise<void> {
  await db.delete(uploads).where(eq(uploads.id, up.id));
  if (!up.completedAt && up.r2UploadId)
    await env.MEDIA.resumeMultipartUpload(up.objectKey, up.r2UploadId)
      .abort()
      .catch(() => {});
  await deleteTails(env, up.id);
}

/** Removes what an abandoned upload left in R2: the multipart upload, tails and an unrecorded object. */
async function discardUpload(env: Env, db: Database, up: UploadRow): Promise<void> {
  if (!up.completedAt) {
    if (up.r2UploadId)
      await env.MEDIA.resumeMultipartUpload(up.objectKey, up.r2UploadId)
        .abort()
        .catch(() => {});
    // A completion whose D1 batch failed leaves an object without a file row.
    const file = await db.select({ id: files.id }).from(files).where(eq(files.id, up.fileId)).get();
    if (!file) await env.MEDIA.delete(up.objectKey);
  }
  await deleteTails(env, up.id);
}

/** Cleanup: expired uploads (finished ones only lose their tus record) are aborted and removed. */
export const uploadsCleanup: ScheduledTask = async (env, db, now) => {
  const expired = await db
    .select()
    .from(uploads)
    .where(lte(uploads.expiresAt, nowIso(now.getTime())))
    .limit(200)
    .all();
  for (const up of expired) {
    await discardUpload(env, db, up);
    await db.delete(uploads).where(eq(uploads.id, up.id));
  }
};

/** Team deletion: the team's uploads in progress go in its batch; multipart uploads and tails after it commits. */
export const teamUploadsDeletionHook: TeamDeletionHook = async ({ env, db, teamId }) => {
  const ups = await db.select().from(uploads).where(eq(uploads.teamId, teamId)).all();
  if (ups.length === 0) return {};
  return {
    statements: [db.delete(uploads).where(eq(uploads.teamId, teamId))],
    after: async () => {
      for (const up of ups) await discardUpload(env, db, up);
    },
  };
};

/** Account deletion: upload rows go in the batch; multipart uploads and tails after it commits. */
export const uploadsDeletionHook: DeletionHook = async ({ env, db, userId }) => {
  const ups = await db.select().from(uploads).where(eq(uploads.ownerId, userId)).all();
  return {
    statements: [db.delete(uploads).where(eq(uploads.ownerId, userId))],
    after: async () => {
      for (const up of ups) await discardUpload(env, db, up);
    },
  };
};

/** A file's objects in R2: its key, its thumbnail renditions' keys, and removing them for good. */
import { inArray, type SQL, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { thumbPresets } from "../../config";
import type { Database } from "../../db";
import { files, fileTrash } from "../../db/schema";
import { nowIso } from "../../lib/ids";

/** A file's row as D1 holds it. */
export type FileRow = typeof files.$inferSelect;

/** R2 key of a thumbnail rendition (files/images.ts): derived from the file id, preset and format. */
export const renditionKey = (fileId: string, preset: string, format: string) => `r/${fileId}/${preset}.${format}`;

/** Every key a file's renditions may have: at most presets × formats, deleted with the file. */
const renditionKeysOf = (fileId: string) =>
  Object.keys(thumbPresets).flatMap((p) => ["webp", "avif"].map((f) => renditionKey(fileId, p, f)));

/** A file's object key and its renditions' keys (an object key that is not `f/<id>` has none). */
const withRenditions = (key: string) => (key.startsWith("f/") ? [key, ...renditionKeysOf(key.slice(2))] : [key]);

/**
 * Removes objects (a file's object with its thumbnail renditions), then forgets their trash
 * entries; what fails stays in the trash for cleanup.
 */
export async function purgeObjects(env: Env, db: Database, keys: string[]): Promise<void> {
  const per = Math.floor(1000 / withRenditions("f/x").length);
  for (let i = 0; i < keys.length; i += per) {
    const batch = keys.slice(i, i + per);
    await env.MEDIA.delete(batch.flatMap(withRenditions));
    for (let j = 0; j < batch.length; j += 90)
      await db.delete(fileTrash).where(inArray(fileTrash.objectKey, batch.slice(j, j + 90)));
  }
}

/**
 * Deleting every file `where` matches (an account's, a team's): statements for the caller's batch
 * (their keys into the trash, their rows out), and the objects' removal once it commits.
 */
export async function filesDeletionPlan(
  env: Env,
  db: Database,
  where: SQL,
): Promise<{ statements: BatchItem<"sqlite">[]; after: () => Promise<void> }> {
  const keys = (await db.select({ key: files.objectKey }).from(files).where(where).all()).map((r) => r.key);
  return {
    statements: [
      db
        .insert(fileTrash)
        .select(
          db
            .select({ objectKey: files.objectKey, createdAt: sql<string>`${nowIso()}`.as("created_at") })
            .from(files)
            .where(where),
        )
        .onConflictDoNothing(),
      db.delete(files).where(where),
    ],
    after: () => purgeObjects(env, db, keys),
  };
}

/** A file's objects in R2: its key, its thumbnail renditions' keys, and removing them for good. */
import { inArray } from "drizzle-orm";
import { thumbPresets } from "../../config";
import type { Database } from "../../db";
import { type files, fileTrash } from "../../db/schema";

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

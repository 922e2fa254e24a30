/**
 * Blocks: a user's list of people they blocked. A block is one-way and has two effects elsewhere:
 * the blocked user cannot put the blocker into a room or open a direct room with them (chat), and
 * the blocker gets no push for the blocked user's messages (push). Both ask this feature: chat
 * embeds `blockedSql` in its one-statement checks, push calls `blockersAmong`.
 */
import { and, desc, eq, type SQL, sql } from "drizzle-orm";
import * as v from "valibot";
import type { Database } from "../../db";
import { blocks } from "../../db/schema";
import { AppError } from "../../errors";
import { decodeCursor, encodeCursor } from "../../lib/cursor";
import { nowIso } from "../../lib/ids";
import type { DeletionHook } from "../../lifecycle";
import { rowWhileUserExists } from "../auth";
import type { Block } from "./schemas";

type BlockRow = typeof blocks.$inferSelect;
const toBlock = (r: BlockRow): Block => ({ userId: r.blockedId, createdAt: r.createdAt });

/**
 * Blocks `blockedId` for `blockerId`. Idempotent: a second block answers with the first one
 * (`created: false`). An unknown user is a 404: ids are not secret (they appear in rooms and public
 * records) and room creation already says which ids are not users, so this reveals nothing new,
 * while a block of nobody would only be a junk row.
 */
export async function blockUser(
  db: Database,
  blockerId: string,
  blockedId: string,
): Promise<{ block: Block; created: boolean }> {
  if (blockerId === blockedId)
    throw new AppError("validation_failed", "You cannot block yourself.", {
      errors: [{ path: "userId", message: "cannot block yourself" }],
    });
  const now = nowIso();
  // One round trip: insert if the user exists (and no block is there yet), then read what is stored.
  const [inserted, stored] = await db.batch([
    db
      .insert(blocks)
      .select(rowWhileUserExists(db, blocks, blockedId, { blockerId, blockedId, createdAt: now }) as never)
      .onConflictDoNothing()
      .returning(),
    db
      .select()
      .from(blocks)
      .where(and(eq(blocks.blockerId, blockerId), eq(blocks.blockedId, blockedId))),
  ]);
  const row = inserted[0] ?? stored[0];
  if (!row) throw new AppError("not_found", "No such user.");
  return { block: toBlock(row), created: inserted.length > 0 };
}

/** Lifts the caller's block of `blockedId`; false when the caller had not blocked them. */
export async function unblockUser(db: Database, blockerId: string, blockedId: string): Promise<boolean> {
  const gone = await db
    .delete(blocks)
    .where(and(eq(blocks.blockerId, blockerId), eq(blocks.blockedId, blockedId)))
    .returning({ blockedId: blocks.blockedId });
  return gone.length > 0;
}

/** List cursors hold the last row's creation time and blocked user id. */
const ListCursor = v.pipe(
  v.tuple([v.string(), v.string()]),
  v.transform(([at, id]) => ({ at, id })),
);

/** The statement behind `listBlocks` (exported for the query-plan test). */
export function listBlocksQuery(
  db: Database,
  blockerId: string,
  limit: number,
  after: { at: string; id: string } | null,
) {
  return db
    .select()
    .from(blocks)
    .where(
      and(
        eq(blocks.blockerId, blockerId),
        // A row-value bound is a range on the index, not a filter over the pages before it.
        after ? sql`(${blocks.createdAt}, ${blocks.blockedId}) < (${after.at}, ${after.id})` : undefined,
      ),
    )
    .orderBy(desc(blocks.createdAt), desc(blocks.blockedId))
    .limit(limit + 1);
}

/** The caller's blocks, newest first, keyset-paginated. */
export async function listBlocks(
  db: Database,
  blockerId: string,
  limit: number,
  cursor?: string,
): Promise<{ items: Block[]; nextCursor: string | null }> {
  const after = cursor ? decodeCursor(cursor, ListCursor) : null;
  const rows = await listBlocksQuery(db, blockerId, limit, after);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map(toBlock),
    nextCursor: rows.length > limit && last ? encodeCursor([last.createdAt, last.blockedId]) : null,
  };
}

/** Of `candidateIds`, those who blocked `blockedId`: one statement whatever the number of candidates. */
export function blockersAmongQuery(db: Database, blockedId: string, candidateIds: readonly string[]) {
  return db.all<{ blockerId: string }>(
    sql`SELECT ${blocks.blockerId} AS blockerId FROM ${blocks}
      WHERE ${blocks.blockedId} = ${blockedId}
      AND ${blocks.blockerId} IN (SELECT value FROM json_each(${JSON.stringify(candidateIds)}))`,
  );
}

/** Of `candidateIds`, those who blocked `blockedId` (push: they get no notification of that user's messages). */
export async function blockersAmong(
  db: Database,
  blockedId: string,
  candidateIds: readonly string[],
): Promise<Set<string>> {
  if (candidateIds.length === 0) return new Set();
  return new Set((await blockersAmongQuery(db, blockedId, candidateIds)).map((r) => r.blockerId));
}

/** SQL: 1 when `blocker` has blocked `blocked` (either may be a column or value expression). */
export const blockedSql = (blocker: SQL | string, blocked: SQL | string) =>
  sql<number>`EXISTS (SELECT 1 FROM blocks WHERE blocker_id = ${blocker} AND blocked_id = ${blocked})`;

/**
 * Account deletion: the blocks the user made and the blocks others made of them go in the
 * account's batch (the foreign keys would cascade too; this does not depend on them).
 */
export const blocksDeletionHook: DeletionHook = async ({ db, userId }) => ({
  statements: [
    db.delete(blocks).where(eq(blocks.blockerId, userId)),
    db.delete(blocks).where(eq(blocks.blockedId, userId)),
  ],
});

/**
 * Writes nobody listens to cost nothing extra: which hubs hold open sockets (`live_hubs`), asked by a
 * write's change-log row (`liveSql`), and each hub's own row, kept in step with its sockets (`OpenRow`).
 */
import { and, eq, type SQL, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Database } from "../../db";
import { liveHubs, teamMembers } from "../../db/schema";
import { type HubKey, liveScope } from "./live";
import { type Collection, collections, findCollection, referencesTo } from "./registry";

type Row = typeof liveHubs.$inferInsert;

/** A hub's row: its collection, kind and subject. */
function rowOf(k: HubKey): Row {
  const { collection } = k;
  if (k.owner !== undefined) return { collection, kind: "owner", subject: k.owner };
  if (k.team !== undefined) return { collection, kind: "team", subject: k.team };
  if (k.member !== undefined) return { collection, kind: "member", subject: k.member };
  return { collection, kind: "shard", subject: String(k.shard) };
}

/** The statement that marks a hub open (idempotent): it rides in the batch of the first socket's replay read. */
const openStatement = (db: Database, k: HubKey): BatchItem<"sqlite"> =>
  db.insert(liveHubs).values(rowOf(k)).onConflictDoNothing();

/** The statement that marks a hub closed. */
function closeStatement(db: Database, k: HubKey): BatchItem<"sqlite"> {
  const r = rowOf(k);
  return db
    .delete(liveHubs)
    .where(and(eq(liveHubs.collection, r.collection), eq(liveHubs.kind, r.kind), eq(liveHubs.subject, r.subject)));
}

const lit = (s: string) => sql.raw(`'${s.replaceAll("'", "''")}'`);
/** A column of the change-log row being inserted (RETURNING sees that row). */
const logged = (column: "owner_id" | "team_id") => sql.raw(`"record_changes"."${column}"`);

/** SQL: a hub that may show the change of a record of `col` (owner and team from the log row) is open. */
function ownHubsOpen(col: Collection): SQL | null {
  const c = lit(col.name);
  const h = liveHubs;
  switch (liveScope(col)) {
    case "none":
      return null;
    case "own":
      return sql`EXISTS (SELECT 1 FROM ${h} WHERE ${h.collection} = ${c} AND ${h.kind} = 'owner'
        AND ${h.subject} = ${logged("owner_id")})`;
    case "all":
      return sql`EXISTS (SELECT 1 FROM ${h} WHERE ${h.collection} = ${c} AND ${h.kind} = 'shard')`;
    case "team": {
      const m = teamMembers;
      // The team's own hub, or the member hub (every team of one user) of one of the team's members.
      return sql`(EXISTS (SELECT 1 FROM ${h} WHERE ${h.collection} = ${c} AND ${h.kind} = 'team'
        AND ${h.subject} = ${logged("team_id")})
        OR EXISTS (SELECT 1 FROM ${h} JOIN ${m} ON ${m.userId} = ${h.subject} WHERE ${h.collection} = ${c}
        AND ${h.kind} = 'member' AND ${m.teamId} = ${logged("team_id")}))`;
    }
  }
}

/**
 * The other collections whose hubs a write to `name` may notify: those counting it (their shared
 * hubs read again), and for a delete, its referrers all the way down (cascaded or nulled records).
 */
function relatedCollections(name: string, op: "create" | "update" | "delete", out = new Set<string>()): Set<string> {
  for (const c of collections) if (c.counts.some((k) => k.of === name) && liveScope(c) === "all") out.add(c.name);
  if (op === "delete")
    for (const r of referencesTo(name))
      if (!out.has(r.col.name)) {
        out.add(r.col.name);
        relatedCollections(r.col.name, "delete", out);
      }
  return out;
}

const cache = new Map<string, SQL>();

/**
 * `live` of a write's change-log row (see `logReturning`): whether any hub the write would notify
 * holds an open socket. False: the after-commit step calls no hub; a subscriber arriving later
 * marks its hub open in the same batch as its first replay read, so it reads this change from the log.
 */
export function liveSql(col: Collection, op: "create" | "update" | "delete"): SQL {
  const key = `${col.name}.${op}`;
  const known = cache.get(key);
  if (known) return known;
  // (A collection referring to itself is in it: a cascade reaches other owners' records of it.)
  const related = [...relatedCollections(col.name, op)].filter((n) => liveScope(findCollection(n)!) !== "none");
  const parts = [
    ownHubsOpen(col),
    related.length
      ? sql`EXISTS (SELECT 1 FROM ${liveHubs} WHERE ${liveHubs.collection} IN (${sql.join(related.map(lit), sql`, `)}))`
      : null,
  ].filter((p): p is SQL => p !== null);
  const out = parts.length ? sql<number>`(${sql.join(parts, sql` OR `)})` : sql<number>`0`;
  cache.set(key, out);
  return out;
}

/**
 * A hub's own row, in step with its sockets: written with its first socket's replay read (`opening`),
 * deleted when the last one leaves (`settle`). D1 calls run one at a time, so a delete never lands
 * after the insert of a socket arriving meanwhile. `present` is null when unknown (a fresh instance).
 */
export class OpenRow {
  private chain: Promise<void> = Promise.resolve();
  constructor(private present: boolean | null) {}

  /**
   * The statement a replay read carries when the row may be missing (none: it is there), after any
   * delete in flight. Wrapped: a drizzle statement is a thenable, which `await` would run.
   */
  async opening(db: Database, k: HubKey): Promise<{ statement: BatchItem<"sqlite"> | null }> {
    await this.chain;
    if (this.present === true) return { statement: null };
    // Unknown until the read's batch commits (a failed read leaves it unknown).
    this.present = null;
    return { statement: openStatement(db, k) };
  }

  /** The read that carried `opening`'s statement committed. */
  opened(): void {
    this.present = true;
  }

  /** Deletes the row when `wanted()` says no socket is open or arriving (checked when its turn comes). */
  settle(db: Database, k: HubKey, wanted: () => boolean): Promise<void> {
    const run = async () => {
      if (wanted() || this.present === false) return;
      this.present = null;
      await db.batch([closeStatement(db, k)]);
      this.present = false;
    };
    const next = this.chain.then(run);
    this.chain = next.catch((e: unknown) => console.error("live: could not mark a hub closed:", (e as Error).message));
    return this.chain;
  }
}

/**
 * Records and who may touch them: the stored shape, rules resolved for a caller (and compiled into
 * the SQL of each route), entity tags.
 */
import { and, eq, or, type SQL, sql } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import { type TeamRole, teams } from "../../db/schema";
import type { Principal } from "../../env";
import { AppError } from "../../errors";
import { RANK, teamsWithRankSql } from "../teams";
import { type Action, rulesOf } from "./define";
import type { Collection } from "./registry";

/** A record as stored and returned: `{ id, ownerId, createdAt, updatedAt, version, ...fields }`. */
export type RecordRow = Record<string, unknown> & { id: string; ownerId: string | null; version: number };
export type Tombstone = { id: string; deleted: true; version: number };

/** A rank above every team role (viewer 0 … owner 3): no member holds it. */
const NOBODY = 4;

/**
 * What a caller may touch under a rule: every record, only its own, records of its teams, or nothing.
 * `team`: the caller holds at least `rank` in the record's team, or is the record's owner and holds at
 * least `ownerRank` there (null: being the owner adds nothing). Every team access needs membership.
 */
export type Access =
  | { kind: "all" }
  | { kind: "own"; userId: string }
  | { kind: "team"; userId: string; rank: number; ownerRank: number | null }
  | { kind: "denied" };

const toRank = (rule: string): number => RANK[rule.slice("team:".length) as TeamRole];

/**
 * Resolves the rules of `actions` for a caller; each must allow (a caller only lists, changes or
 * deletes what it may also read). The service key bypasses rules; anonymous callers get 401 unless
 * every rule is public.
 */
export function access(col: Collection, actions: Action | readonly Action[], p: Principal | null): Access {
  const list = typeof actions === "string" ? [actions] : actions;
  return list.map((a) => accessOne(col, a, p)).reduce(narrower);
}

/**
 * What a caller may read of a collection, for a statement about records it reached through a
 * reference (a check or an expand): like `access`, but an anonymous caller under a rule that needs
 * a token reads nothing instead of getting a 401.
 */
export function readAccess(col: Collection, p: Principal | null): Access {
  try {
    return access(col, "read", p);
  } catch (e) {
    if (e instanceof AppError) return { kind: "denied" };
    throw e;
  }
}

function accessOne(col: Collection, action: Action, p: Principal | null): Access {
  const rules = rulesOf(col.rules[action]);
  if (p?.kind === "service" || rules.includes("public")) return { kind: "all" };
  if (!p) throw new AppError("unauthorized", "Send Authorization: Bearer <accessToken>.");
  if (rules.includes("authenticated")) return { kind: "all" };
  if (col.scope === "team") {
    const teamRanks = rules.filter((r) => r.startsWith("team:")).map(toRank);
    const rank = Math.min(NOBODY, ...teamRanks);
    // `owner` in a team: the record's creator, while a member (any role).
    const ownerRank = rules.includes("owner") && rank > 0 ? 0 : null;
    if (rank === NOBODY && ownerRank === null) return { kind: "denied" };
    return { kind: "team", userId: p.userId, rank, ownerRank };
  }
  if (rules.includes("owner")) return { kind: "own", userId: p.userId };
  return { kind: "denied" };
}

/** Both must allow. */
function narrower(a: Access, b: Access): Access {
  if (a.kind === "denied" || b.kind === "denied") return { kind: "denied" };
  if (a.kind === "all") return b;
  if (b.kind === "all") return a;
  if (a.kind === "team" && b.kind === "team") {
    // (k ≥ r1 ∨ own ∧ k ≥ o1) ∧ (k ≥ r2 ∨ own ∧ k ≥ o2) = k ≥ max(r1, r2) ∨ own ∧ k ≥ the least of the mixed terms.
    const o1 = a.ownerRank ?? NOBODY;
    const o2 = b.ownerRank ?? NOBODY;
    const rank = Math.max(a.rank, b.rank);
    const owned = Math.min(Math.max(a.rank, o2), Math.max(o1, b.rank), Math.max(o1, o2));
    if (rank === NOBODY && owned === NOBODY) return { kind: "denied" };
    return { kind: "team", userId: a.userId, rank, ownerRank: owned < rank ? owned : null };
  }
  // `own` only comes from owner-scoped collections, `team` only from team-scoped ones.
  return a;
}

/** The least rank that reaches any record under a team access (as the owner, or by role). */
export const leastRank = (acc: Extract<Access, { kind: "team" }>) => Math.min(acc.rank, acc.ownerRank ?? NOBODY);

/**
 * The WHERE of an access over a table or the change log (`ownerId` and, for team access, `teamId`
 * columns): nothing for `all`, the owner for `own`, the caller's teams for `team` (the team column
 * `IN` the caller's memberships, so a list walks the team index of only those teams).
 */
export function accessFilter(cols: { ownerId: SQLiteColumn; teamId?: SQLiteColumn | undefined }, acc: Access) {
  if (acc.kind === "own") return eq(cols.ownerId, acc.userId);
  if (acc.kind !== "team") return undefined;
  if (!cols.teamId) throw new Error("a team access on a table without teamId");
  const member = (rank: number) => sql`${cols.teamId} IN ${teamsWithRankSql(acc.userId, rank)}`;
  if (acc.ownerRank === null) return member(acc.rank);
  const owns = eq(cols.ownerId, acc.userId);
  // The record's owner needs a lesser role than everyone else (or only the owner may).
  return and(member(acc.ownerRank), acc.rank === NOBODY ? owns : or(owns, member(acc.rank)));
}

/**
 * SQL: a new record may go into `teamId` under the create access `acc`: the caller holds the role
 * the rule needs of the record's creator there; for the service key, the team exists.
 */
export function teamAdmits(acc: Access, teamId: string): SQL {
  if (acc.kind === "team") return sql`${teamId} IN ${teamsWithRankSql(acc.userId, leastRank(acc))}`;
  if (acc.kind === "denied") return sql`0`;
  return sql`EXISTS (SELECT 1 FROM ${teams} WHERE ${teams.id} = ${teamId})`;
}

/** The WHERE of `access` over a collection's table. */
export const recordFilter = (col: Collection, acc: Access): SQL | undefined =>
  accessFilter({ ownerId: col.table.ownerId, teamId: teamColumn(col) }, acc);

/** A team-scoped collection's `teamId` column. */
export const teamColumn = (col: Collection): SQLiteColumn | undefined =>
  col.scope === "team" ? col.table.teamId : undefined;

/**
 * Whether a row (its owner and, for team access, the caller's `role` in its team) is within an
 * access: the same test as `accessFilter`, on a row already read.
 */
export function visible(acc: Access, row: { ownerId: unknown; role?: TeamRole | null }): boolean {
  if (acc.kind === "all") return true;
  if (acc.kind === "own") return row.ownerId === acc.userId;
  if (acc.kind === "denied" || !row.role) return false;
  const k = RANK[row.role];
  return k >= acc.rank || (acc.ownerRank !== null && row.ownerId === acc.userId && k >= acc.ownerRank);
}

/** A record's entity tag: its version, quoted. */
export const etag = (version: number) => `"${version}"`;

export const notFound = (col: Collection) => new AppError("not_found", `No such record in ${col.name}.`);

/**
 * The admin feature's lists and lookups use indexes: each query it runs is captured (counting D1
 * binding) and explained. Lists walk an index in their sort order (no temporary sort of a table),
 * lookups SEARCH. The overview's totals and a user search are whole-table by design (see README).
 */
import { env } from "cloudflare:workers";
import { getTableName } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { createDb } from "../../../src/db";
import { listAudit, listUsers, userDetail } from "../../../src/features/admin/service";
import { adminStanding, findConsoleSession } from "../../../src/features/auth/for-admin";
import { listAllRooms, roomWithMembers } from "../../../src/features/chat/rooms";
import { collections, listRecords, teamRecordCounts } from "../../../src/features/collections";
import { listAllFiles } from "../../../src/features/files/service";
import { adminTeam, adminTeamDetail, listAllTeams, teamsOfUser } from "../../../src/features/teams/for-admin";
import { countingD1 } from "../../budget/counting-d1";

/** The plans of every statement `run` sends to D1 (bound values replaced by placeholders' text). */
async function plans(run: (db: ReturnType<typeof createDb>) => Promise<unknown>): Promise<string[]> {
  const { db, counter } = countingD1(env.DB);
  await run(createDb(db));
  const out: string[] = [];
  for (const call of counter.calls) {
    for (const sql of call.sql.split(" ; ")) {
      const n = (sql.match(/\?/g) ?? []).length;
      const res = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .bind(...Array.from({ length: n }, () => "x"))
        .all<{ detail: string }>();
      out.push(res.results.map((r) => r.detail).join("\n"));
    }
  }
  return out;
}

const noTempSort = (p: string) => expect(p, p).not.toMatch(/USE TEMP B-TREE/);
const searches = (p: string) => {
  expect(p, p).toMatch(/SEARCH/);
  expect(p, p).not.toMatch(/^SCAN (?!CONSTANT ROW)/m);
};

describe("admin queries", () => {
  it("users list and audit log page along their primary key, newest first, without sorting", async () => {
    for (const p of await plans((db) => listUsers(db, { limit: 20, cursor: "eyJpIjoieiJ9" }))) noTempSort(p);
    for (const p of await plans((db) => listAudit(db, { limit: 20 }))) noTempSort(p);
    const byTarget = await plans((db) => listAudit(db, { limit: 10, target: "user:x" }));
    for (const p of byTarget) {
      searches(p);
      noTempSort(p);
      expect(p).toContain("audit_log_target_idx");
    }
  });

  it("all files and all rooms page along an index without sorting", async () => {
    for (const p of await plans((db) => listAllFiles(db, 20, "x"))) noTempSort(p);
    for (const p of await plans((db) => listAllRooms(db, 20))) noTempSort(p);
  });

  it("a user's counts, a room with its members, an admin's standing and a console session are searches", async () => {
    for (const p of await plans((db) => userDetail(db, "x"))) searches(p);
    for (const p of await plans((db) => roomWithMembers(db, "x"))) searches(p);
    for (const p of await plans((db) => adminStanding(db, "x", "y"))) searches(p);
    for (const p of await plans((db) => findConsoleSession(db, "x"))) searches(p);
  });
});

describe("the console's team queries", () => {
  it("all teams page along the key, a team's members and invitations and a user's teams along an index", async () => {
    for (const p of await plans((db) => listAllTeams(db, 20, "WyJ4Il0"))) noTempSort(p);
    const detail = await plans((db) => adminTeamDetail(db, "x", 20));
    expect(detail).toHaveLength(3);
    for (const p of detail) {
      searches(p);
      noTempSort(p);
    }
    for (const p of await plans((db) => teamsOfUser(db, "x", 20))) {
      searches(p);
      noTempSort(p);
    }
  });

  it("a team's records: each count and each page is a range of the collection's team index", async () => {
    const teamScoped = collections.filter((col) => col.scope === "team");
    expect(teamScoped.length).toBeGreaterThan(0);
    for (const p of await plans((db) => adminTeam(db, "x"))) searches(p);
    const counts = await plans((db) => teamRecordCounts(db, "x"));
    expect(counts).toHaveLength(teamScoped.length);
    for (const [i, p] of counts.entries()) {
      searches(p);
      expect(p).toContain(`${getTableName(teamScoped[i]!.table)}_team_`);
    }
    for (const col of teamScoped) {
      const service = { kind: "service" } as const;
      const page = (db: ReturnType<typeof createDb>) =>
        listRecords(db, col, service, { where: { teamId: "x" }, sort: "-createdAt", limit: 5 });
      for (const p of await plans(page)) {
        searches(p);
        noTempSort(p);
        expect(p).toContain(`${getTableName(col.table)}_team_created_idx`);
      }
    }
  });
});

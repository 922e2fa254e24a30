/** EXPLAIN QUERY PLAN for the teams statements: every table access goes through an index, no sort after the fact. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createDb } from "../../../src/db";
import { roleQuery } from "../../../src/features/teams/access";
import { teamsDeletionStatements } from "../../../src/features/teams/deletion";
import { listInvitationsQuery } from "../../../src/features/teams/invitations";
import { listMembersQuery, listTeamsQuery, ownedTeamsQuery, teamQuery } from "../../../src/features/teams/service";
import { signup } from "../../helpers/api";
import { explain } from "../../helpers/query-plan";
import { createTeam } from "./helpers";

const db = createDb(env.DB);

type Q = { toSQL(): { sql: string; params: unknown[] } };

async function plan(q: Q): Promise<string> {
  const { sql, params } = q.toSQL();
  return explain(sql, params);
}

function expectIndexed(p: string, ...indexes: string[]) {
  for (const ix of indexes) expect(p).toContain(ix);
  for (const line of p.split("\n")) {
    if (/^SCAN /.test(line) && !/USING (COVERING )?INDEX/.test(line)) throw new Error(`full scan: ${line}\n${p}`);
  }
  expect(p).not.toContain("USE TEMP B-TREE");
}

describe("teams: the queries use indexes", () => {
  it("a team as a member sees it, and a role", async () => {
    const owner = await signup();
    const { id } = await createTeam(owner);
    expectIndexed(await plan(teamQuery(db, id, owner.id)), "sqlite_autoindex_team_members_1");
    expectIndexed(await plan(roleQuery(db, id, owner.id)), "sqlite_autoindex_team_members_1");
  });

  it("the caller's teams, first page and after a cursor", async () => {
    const owner = await signup();
    const { id } = await createTeam(owner);
    expectIndexed(await plan(listTeamsQuery(db, owner.id, 50, null)), "team_members_user_idx");
    expectIndexed(await plan(listTeamsQuery(db, owner.id, 50, id)), "team_members_user_idx");
  });

  it("members and pending invitations, first page and after a cursor", async () => {
    const owner = await signup();
    const { id } = await createTeam(owner);
    const after = { at: new Date().toISOString(), id: owner.id };
    expectIndexed(await plan(listMembersQuery(db, id, 50, null)), "team_members_team_joined_idx");
    expectIndexed(await plan(listMembersQuery(db, id, 50, after)), "team_members_team_joined_idx");
    expectIndexed(await plan(listInvitationsQuery(db, id, 50, null)), "team_invitations_team_created_idx");
    expectIndexed(await plan(listInvitationsQuery(db, id, 50, after)), "team_invitations_team_created_idx");
  });

  it("account deletion: the teams a user owns and their heirs", async () => {
    const owner = await signup();
    await createTeam(owner);
    const p = await plan(ownedTeamsQuery(db, owner.id));
    expectIndexed(p, "team_members_user_idx", "team_members_team_joined_idx");
  });

  it("account deletion's statements: hand-over, the sole-owned teams' rows, the memberships", async () => {
    const owner = await signup();
    await createTeam(owner);
    const plans: string[] = [];
    for (const q of teamsDeletionStatements(db, owner.id)) plans.push(await plan(q as unknown as Q));
    for (const p of plans) expectIndexed(p);
    expect(plans[0]).toContain("team_members_user_idx");
    expect(plans[0]).toContain("team_members_team_joined_idx");
    expect(plans.at(-1)).toContain("team_members_user_idx");
  });
});

/**
 * Account deletion and teams: the account's memberships go; a team it owned passes to its
 * longest-standing admin, or is deleted with its memberships and invitations when it has none.
 * Team deletion runs the team deletion hooks in its batch.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createDb } from "../../../src/db";
import { teamsDeletionHook } from "../../../src/features/teams/deletion";
import { lifecycle } from "../../../src/lifecycle-parts";
import { api, expectProblem, signup, type TestUser } from "../../helpers/api";
import { createTeam, invite, memberAs, rolesInD1 } from "./helpers";

const deleteAccount = async (u: TestUser) =>
  expect((await api("/v1/me", { method: "DELETE", token: u.accessToken })).status).toBe(204);
const count = (table: string, col: string, id: string) =>
  env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE ${col} = ?`).bind(id).first<number>("n");

describe("account deletion and teams", () => {
  it("an owned team passes to the longest-standing admin", async () => {
    const owner = await signup();
    const { id } = await createTeam(owner);
    await memberAs(owner, id, "member");
    const first = await memberAs(owner, id, "admin");
    const second = await memberAs(owner, id, "admin");
    // The member who joined first is made an admin last: the standing that counts is the membership's.
    await deleteAccount(owner);
    const roles = await rolesInD1(id);
    expect(roles[owner.id]).toBeUndefined();
    expect(roles[first.id]).toBe("owner");
    expect(roles[second.id]).toBe("admin");
    expect(Object.values(roles).filter((r) => r === "owner")).toHaveLength(1);
    expect((await api(`/v1/teams/${id}`, { token: first.accessToken })).body).toMatchObject({
      role: "owner",
      memberCount: 3,
    });
  });

  it("an owned team with no admin is deleted with its memberships and invitations", async () => {
    const owner = await signup();
    const { id } = await createTeam(owner);
    const member = await memberAs(owner, id, "member");
    await invite(owner, id, "pending@example.com");
    await deleteAccount(owner);
    expect(await count("teams", "id", id)).toBe(0);
    expect(await count("team_members", "team_id", id)).toBe(0);
    expect(await count("team_invitations", "team_id", id)).toBe(0);
    expectProblem(await api(`/v1/teams/${id}`, { token: member.accessToken }), 404, "not_found");
  });

  it("the account's memberships in other teams go; those teams keep their owner", async () => {
    const owner = await signup();
    const { id } = await createTeam(owner);
    const admin = await memberAs(owner, id, "admin");
    await deleteAccount(admin);
    expect(await rolesInD1(id)).toEqual({ [owner.id]: "owner" });
    expect(await count("team_members", "user_id", admin.id)).toBe(0);
  });

  it("the hook's statements hand over and delete; it runs the team deletion hooks of a deleted team", async () => {
    const owner = await signup();
    const kept = await createTeam(owner, "kept");
    const heir = await memberAs(owner, kept.id, "admin");
    const doomed = await createTeam(owner, "doomed");
    const seen: string[] = [];
    const db = createDb(env.DB);
    const plan = await teamsDeletionHook({
      env,
      db,
      userId: owner.id,
      lifecycle: {
        ...lifecycle,
        deletionHooks: [],
        sessionSocketClosers: [],
        teamDeletionHooks: [
          async ({ teamId }) => {
            seen.push(teamId);
            return { statements: [], after: async () => void seen.push(`after:${teamId}`) };
          },
        ],
      },
    });
    expect(seen).toEqual([doomed.id]);
    const [first, ...rest] = plan.statements!;
    await db.batch([first!, ...rest]);
    await plan.after?.();
    expect(seen).toEqual([doomed.id, `after:${doomed.id}`]);
    expect(await rolesInD1(kept.id)).toEqual({ [heir.id]: "owner" });
    expect(await count("teams", "id", doomed.id)).toBe(0);
  });
});

describe("deleting a team while its ownership changes", () => {
  it("a hand-over that commits between the owner check and the batch: nothing is deleted (409)", async () => {
    const owner = await signup();
    const { id } = await createTeam(owner);
    const heir = await memberAs(owner, id, "admin");
    // A D1 binding whose first batch is preceded by the hand-over (as if it committed just then).
    const racing = new Proxy(env.DB, {
      get(target, prop, receiver) {
        if (prop === "batch")
          return async (statements: D1PreparedStatement[]) => {
            await target.batch([
              target
                .prepare("UPDATE team_members SET role = 'owner' WHERE team_id = ? AND user_id = ?")
                .bind(id, heir.id),
              target
                .prepare("UPDATE team_members SET role = 'admin' WHERE team_id = ? AND user_id = ?")
                .bind(id, owner.id),
            ]);
            return target.batch(statements);
          };
        const v = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const { deleteTeam } = await import("../../../src/features/teams/service");
    await expect(deleteTeam(lifecycle, env, createDb(racing), id, owner.id)).rejects.toMatchObject({
      code: "conflict",
    });
    expect(await count("teams", "id", id)).toBe(1);
    expect(await rolesInD1(id)).toEqual({ [owner.id]: "admin", [heir.id]: "owner" });
  });
});

/** Helpers for the teams tests: teams, members in a given role, verified emails, invitation tokens. */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { api, serviceKey, signup, type TestUser } from "../../helpers/api";
import { codeIn, mailTo } from "../../helpers/outbox";

export type Role = "owner" | "admin" | "member" | "viewer";

export async function createTeam(owner: TestUser, name = "Team") {
  const res = await api("/v1/teams", { token: owner.accessToken, body: { name } });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; name: string; createdAt: string; role: Role; memberCount: number };
}

/** Marks the user's email verified (what the verification mail's code does). */
export async function verifyEmail(user: TestUser) {
  await env.DB.prepare("UPDATE users SET email_verified = 1 WHERE id = ?").bind(user.id).run();
}

/** Invites `email` as `role` (by `inviter`) and returns the answer and the token from the mail. */
export async function invite(inviter: TestUser, teamId: string, email: string, role?: Role) {
  const res = await api(`/v1/teams/${teamId}/invitations`, {
    token: inviter.accessToken,
    body: { email, ...(role ? { role } : {}) },
  });
  expect(res.status, res.text).toBe(201);
  return {
    invitation: res.body as { id: string; email: string; role: Role; expiresAt: string },
    token: codeIn((await mailTo(email.toLowerCase())).text),
  };
}

export const join = (user: TestUser, token: string) =>
  api("/v1/teams/join", { token: user.accessToken, body: { token } });

/** A new user with a verified email who joined `teamId` as `role` through an invitation by `owner`. */
export async function memberAs(owner: TestUser, teamId: string, role: Exclude<Role, "owner">): Promise<TestUser> {
  const u = await signup();
  await verifyEmail(u);
  const { token } = await invite(owner, teamId, u.email, role);
  const res = await join(u, token);
  expect(res.status, res.text).toBe(200);
  expect(res.body.role).toBe(role);
  return u;
}

/** Every role of the team's members straight from D1. */
export async function rolesInD1(teamId: string): Promise<Record<string, string>> {
  const rows = await env.DB.prepare("SELECT user_id, role FROM team_members WHERE team_id = ?").bind(teamId).all<{
    user_id: string;
    role: string;
  }>();
  return Object.fromEntries(rows.results.map((r) => [r.user_id, r.role]));
}

/** Who acts in the permission matrices: one user per role, a removed member, a stranger, the service key. */
export type Actor = "stranger" | "viewer" | "member" | "admin" | "owner" | "removed" | "service";
export const ACTORS: Actor[] = ["stranger", "viewer", "member", "admin", "owner", "removed", "service"];

/** A team with one user per role, a member removed again and a stranger; `tokenOf` gives each actor's. */
export async function teamWithActors() {
  const owner = await signup();
  const team = await createTeam(owner);
  const users: Record<Exclude<Actor, "service">, TestUser> = {
    owner,
    admin: await memberAs(owner, team.id, "admin"),
    member: await memberAs(owner, team.id, "member"),
    viewer: await memberAs(owner, team.id, "viewer"),
    removed: await memberAs(owner, team.id, "member"),
    stranger: await signup(),
  };
  const gone = await api(`/v1/teams/${team.id}/members/${users.removed.id}`, {
    method: "DELETE",
    token: owner.accessToken,
  });
  expect(gone.status).toBe(204);
  const tokenOf = (a: Actor) => (a === "service" ? serviceKey() : users[a].accessToken);
  return { owner, team, users, tokenOf };
}

/** A shopping list (`lists`) in `teamId`, made by the service key once per team: what `items` reference. */
const teamLists = new Map<string, string>();
export async function listIn(teamId: string): Promise<string> {
  const known = teamLists.get(teamId);
  if (known) return known;
  const res = await api("/v1/collections/lists/records", { token: serviceKey(), body: { teamId, title: "Groceries" } });
  expect(res.status, res.text).toBe(201);
  teamLists.set(teamId, res.body.id);
  return res.body.id as string;
}

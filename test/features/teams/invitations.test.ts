/**
 * Invitation tokens: single use, 7 days, revocable, only for a verified matching email; and the
 * per-team invitation rate limit.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, expectProblem, fetchWithEnv, freshIp, signup } from "../../helpers/api";
import { createTeam, invite, join, rolesInD1, verifyEmail } from "./helpers";

async function setup() {
  const owner = await signup();
  const team = await createTeam(owner);
  const bob = await signup();
  await verifyEmail(bob);
  const { invitation, token } = await invite(owner, team.id, bob.email);
  return { owner, team, bob, invitation, token };
}

describe("team invitation tokens", () => {
  it("a token works once: reuse → 400, even by the same user after leaving", async () => {
    const { team, bob, token } = await setup();
    expect((await join(bob, token)).status).toBe(200);
    expectProblem(await join(bob, token), 400, "validation_failed");
    expect((await api(`/v1/teams/${team.id}/members/me`, { method: "DELETE", token: bob.accessToken })).status).toBe(
      204,
    );
    expectProblem(await join(bob, token), 400, "validation_failed");
    expect((await rolesInD1(team.id))[bob.id]).toBeUndefined();
  });

  it("an expired token → 400 (7 days after it was sent)", async () => {
    const { team, bob, token, invitation } = await setup();
    await env.DB.prepare("UPDATE team_invitations SET expires_at = ? WHERE id = ?")
      .bind(new Date(Date.now() - 1000).toISOString(), invitation.id)
      .run();
    expectProblem(await join(bob, token), 400, "validation_failed");
    expect((await rolesInD1(team.id))[bob.id]).toBeUndefined();
  });

  it("a revoked token → 400, and it leaves the pending list; revoking twice → 404", async () => {
    const { owner, team, bob, token, invitation } = await setup();
    const path = `/v1/teams/${team.id}/invitations/${invitation.id}`;
    expect((await api(path, { method: "DELETE", token: owner.accessToken })).status).toBe(204);
    expectProblem(await api(path, { method: "DELETE", token: owner.accessToken }), 404, "not_found");
    expectProblem(await join(bob, token), 400, "validation_failed");
    expect((await api(`/v1/teams/${team.id}/invitations`, { token: owner.accessToken })).body.items).toEqual([]);
  });

  it("an unknown token → 400", async () => {
    const bob = await signup();
    expectProblem(await join(bob, "not-a-token"), 400, "validation_failed");
  });

  it("another user's email → 403 and the token stays usable by its addressee", async () => {
    const { team, bob, token } = await setup();
    const eve = await signup();
    await verifyEmail(eve);
    expectProblem(await join(eve, token), 403, "forbidden");
    expect((await rolesInD1(team.id))[eve.id]).toBeUndefined();
    expect((await join(bob, token)).status).toBe(200);
  });

  it("an unverified email, even the right one → 403", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    const bob = await signup();
    const { token } = await invite(owner, team.id, bob.email);
    expectProblem(await join(bob, token), 403, "forbidden");
    await verifyEmail(bob);
    expect((await join(bob, token)).body).toMatchObject({ id: team.id, role: "member" });
  });

  it("two concurrent joins with one token: one membership, the other → 400", async () => {
    const { team, bob, token } = await setup();
    const results = await Promise.all([join(bob, token), join(bob, token)]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 400]);
    expect((await rolesInD1(team.id))[bob.id]).toBe("member");
  });

  it("a member who is invited again keeps their role", async () => {
    const { owner, team, bob, token } = await setup();
    await join(bob, token);
    await api(`/v1/teams/${team.id}/members/${bob.id}`, {
      method: "PATCH",
      token: owner.accessToken,
      body: { role: "viewer" },
    });
    const again = await invite(owner, team.id, bob.email, "admin");
    expect((await join(bob, again.token)).body.role).toBe("viewer");
  });
});

/** Calls the app with some bindings replaced (a rate limiter that refuses, or records). */
async function inviteWith(overrides: Partial<Env>, teamId: string, token: string, email: string) {
  const req = new Request(`https://outpost.test/v1/teams/${teamId}/invitations`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "cf-connecting-ip": freshIp() },
    body: JSON.stringify({ email }),
  });
  const res = await fetchWithEnv(req, overrides);
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : null };
}

describe("team invitation rate limit", () => {
  it("over the team's budget → 429 rate_limited with Retry-After, no invitation and no mail", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    const refusing = { limit: async () => ({ success: false }) } as unknown as RateLimit;
    const res = await inviteWith({ ROOMS_LIMITER: refusing }, team.id, owner.accessToken, "limited@example.com");
    expectProblem(res, 429, "rate_limited");
    expect(res.headers.get("retry-after")).toBe("60");
    const n = await env.DB.prepare("SELECT count(*) AS n FROM team_invitations WHERE team_id = ?")
      .bind(team.id)
      .first("n");
    expect(n).toBe(0);
  });

  it("the budget is the team's, whoever invites", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    const keys: string[] = [];
    const recording = {
      limit: async (o: { key: string }) => {
        keys.push(o.key);
        return { success: true };
      },
    } as unknown as RateLimit;
    const res = await inviteWith({ ROOMS_LIMITER: recording }, team.id, owner.accessToken, "counted@example.com");
    expect(res.status).toBe(201);
    expect(keys).toEqual([`team-invite:${team.id}`]);
  });
});

/**
 * Every team action × every kind of caller: stranger, viewer, member, admin, owner, a removed member
 * and the service key (refused with 403 on every team route: teams act as the calling user). A
 * non-member, removed or never added, gets 404, never 403.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { type ApiResponse, api } from "../../helpers/api";
import { ACTORS, type Actor, invite, memberAs, rolesInD1, teamWithActors } from "./helpers";

/** A team with one user per role, a removed member, two plain members to act on and a pending invitation. */
async function fixture() {
  const { owner, team, users, tokenOf } = await teamWithActors();
  const target = await memberAs(owner, team.id, "member");
  const leaver = await memberAs(owner, team.id, "member");
  const { invitation } = await invite(owner, team.id, "pending@example.com");
  return { team, users, target, leaver, invitation, tokenOf };
}

type Fixture = Awaited<ReturnType<typeof fixture>>;
interface Action {
  name: string;
  call: (f: Fixture, token: string) => Promise<ApiResponse>;
  /** The status each actor gets. */
  expect: Record<Actor, number>;
  /** What the success left in D1. */
  check?: (f: Fixture) => Promise<void>;
}

const read = { stranger: 404, viewer: 200, member: 200, admin: 200, owner: 200, removed: 404, service: 403 };
const manage = (ok: number) => ({
  stranger: 404,
  viewer: 403,
  member: 403,
  admin: ok,
  owner: ok,
  removed: 404,
  service: 403,
});

// In order: each later action still finds what it needs (the team is deleted last).
const ACTIONS: Action[] = [
  { name: "GET /teams/:id", call: (f, t) => api(`/v1/teams/${f.team.id}`, { token: t }), expect: read },
  { name: "GET /teams/:id/members", call: (f, t) => api(`/v1/teams/${f.team.id}/members`, { token: t }), expect: read },
  {
    name: "GET /teams/:id/invitations",
    call: (f, t) => api(`/v1/teams/${f.team.id}/invitations`, { token: t }),
    expect: manage(200),
  },
  {
    name: "PATCH /teams/:id",
    call: (f, t) => api(`/v1/teams/${f.team.id}`, { method: "PATCH", token: t, body: { name: "Renamed" } }),
    expect: manage(200),
    check: async (f) => {
      const row = await env.DB.prepare("SELECT name FROM teams WHERE id = ?").bind(f.team.id).first("name");
      expect(row).toBe("Renamed");
    },
  },
  {
    name: "PATCH /teams/:id/members/:userId (member → viewer)",
    call: (f, t) =>
      api(`/v1/teams/${f.team.id}/members/${f.target.id}`, { method: "PATCH", token: t, body: { role: "viewer" } }),
    expect: manage(200),
    check: async (f) => expect((await rolesInD1(f.team.id))[f.target.id]).toBe("viewer"),
  },
  {
    name: "POST /teams/:id/invitations",
    call: (f, t) => api(`/v1/teams/${f.team.id}/invitations`, { token: t, body: { email: "new@example.com" } }),
    expect: manage(201),
  },
  {
    name: "DELETE /teams/:id/invitations/:invitationId",
    call: (f, t) => api(`/v1/teams/${f.team.id}/invitations/${f.invitation.id}`, { method: "DELETE", token: t }),
    expect: manage(204),
    check: async (f) => {
      const row = await env.DB.prepare("SELECT revoked_at FROM team_invitations WHERE id = ?")
        .bind(f.invitation.id)
        .first();
      expect(row?.revoked_at).toBeTruthy();
    },
  },
  {
    name: "DELETE /teams/:id/members/:userId (a member)",
    call: (f, t) => api(`/v1/teams/${f.team.id}/members/${f.leaver.id}`, { method: "DELETE", token: t }),
    expect: manage(204),
    check: async (f) => expect((await rolesInD1(f.team.id))[f.leaver.id]).toBeUndefined(),
  },
  {
    name: "DELETE /teams/:id",
    call: (f, t) => api(`/v1/teams/${f.team.id}`, { method: "DELETE", token: t }),
    expect: { stranger: 404, viewer: 403, member: 403, admin: 403, owner: 204, removed: 404, service: 403 },
    check: async (f) => {
      expect(await env.DB.prepare("SELECT id FROM teams WHERE id = ?").bind(f.team.id).first()).toBeNull();
    },
  },
];

describe("teams: every action × every caller", () => {
  for (const actor of ACTORS) {
    it(`as ${actor}`, async () => {
      const f = await fixture();
      const before = await rolesInD1(f.team.id);
      for (const action of ACTIONS) {
        const res = await action.call(f, f.tokenOf(actor));
        const want = action.expect[actor];
        expect(res.status, `${action.name} as ${actor}: ${res.text}`).toBe(want);
        if (want >= 400) {
          expect(res.headers.get("content-type")).toContain("application/problem+json");
          expect(res.body.code).toBe(want === 404 ? "not_found" : "forbidden");
        } else await action.check?.(f);
      }
      // A refused caller changed nothing.
      if (actor !== "admin" && actor !== "owner") {
        expect(await rolesInD1(f.team.id)).toEqual(before);
        const name = await env.DB.prepare("SELECT name FROM teams WHERE id = ?").bind(f.team.id).first("name");
        expect(name).toBe("Team");
      }
    });
  }
});

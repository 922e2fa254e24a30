/** `client.teams`: teams, members and roles, invitations (see the server's docs/teams.md). */
import type { Core } from "./core.js";
import { enc } from "./core.js";
import { type Pages, pages } from "./pages.js";
import type { Page } from "./types.js";

export type TeamRole = "owner" | "admin" | "member" | "viewer";
/** A team as the caller sees it: `role` is the caller's. */
export interface Team {
  id: string;
  name: string;
  createdAt: string;
  role: TeamRole;
  memberCount: number;
}
export interface TeamMember {
  userId: string;
  name: string | null;
  role: TeamRole;
  joinedAt: string;
}
export interface TeamInvitation {
  id: string;
  email: string;
  role: TeamRole;
  expiresAt: string;
}
type ListQuery = { limit?: number; cursor?: string };

export class Teams {
  constructor(private readonly c: Core) {}
  private path(id: string, rest = "") {
    return `/v1/teams/${enc(id)}${rest}`;
  }
  private paged<T>(path: string, q: ListQuery): Pages<T> {
    return pages((cursor) => this.c.http.json<Page<T>>(path, { query: { limit: q.limit, cursor } }), q.cursor);
  }
  /** A new team; the caller is its owner. */
  create(name: string): Promise<Team> {
    return this.c.http.json("/v1/teams", { method: "POST", body: { name } });
  }
  /** The caller's teams, newest first (a `Pages` list). */
  list(q: ListQuery = {}): Pages<Team> {
    return this.paged("/v1/teams", q);
  }
  get(id: string): Promise<Team> {
    return this.c.http.json(this.path(id));
  }
  /** Admin or owner. */
  rename(id: string, name: string): Promise<Team> {
    return this.c.http.json(this.path(id), { method: "PATCH", body: { name } });
  }
  /** Owner only: the team, its memberships, invitations and team-scoped data. */
  async delete(id: string): Promise<void> {
    await this.c.http.json(this.path(id), { method: "DELETE" });
  }
  /** The team's members, most recently joined first (a `Pages` list). */
  members(id: string, q: ListQuery = {}): Pages<TeamMember> {
    return this.paged(this.path(id, "/members"), q);
  }
  /** Mails `email` a single-use invitation (7 days); `role` defaults to `member`, only the owner invites admins. */
  invite(id: string, email: string, role?: Exclude<TeamRole, "owner">): Promise<TeamInvitation> {
    return this.c.http.json(this.path(id, "/invitations"), { method: "POST", body: { email, ...(role && { role }) } });
  }
  /** Pending invitations, newest first (admin or owner; a `Pages` list). */
  invitations(id: string, q: ListQuery = {}): Pages<TeamInvitation> {
    return this.paged(this.path(id, "/invitations"), q);
  }
  async revokeInvitation(id: string, invitationId: string): Promise<void> {
    await this.c.http.json(this.path(id, `/invitations/${enc(invitationId)}`), { method: "DELETE" });
  }
  /** Accepts an invitation: the signed-in user's verified email must be the invitation's. */
  join(token: string): Promise<Team> {
    return this.c.http.json("/v1/teams/join", { method: "POST", body: { token } });
  }
  /** Changes a member's role; `"owner"` hands ownership over (the caller becomes an admin). */
  setRole(id: string, userId: string, role: TeamRole): Promise<TeamMember> {
    return this.c.http.json(this.path(id, `/members/${enc(userId)}`), { method: "PATCH", body: { role } });
  }
  /** Removes a member (admins: members and viewers; the owner: anyone). */
  async remove(id: string, userId: string): Promise<void> {
    await this.c.http.json(this.path(id, `/members/${enc(userId)}`), { method: "DELETE" });
  }
  /** The caller leaves the team (the owner must hand ownership over first). */
  leave(id: string): Promise<void> {
    return this.remove(id, "me");
  }
}

/** Users: the searchable list and a user's page (account, usage, actions, admin actions on it). */
import { Hono } from "hono";
import type { FC } from "hono/jsx";
import * as v from "valibot";
import { limits } from "../../../config";
import { AppError } from "../../../errors";
import { factorSummary, listPasskeys, type PasskeyInfo, type SignInMethod, signInMethods } from "../../auth";
import { teamsOfUser } from "../../teams";
import type { AdminUser, AdminUserDetail, AuditEntry } from "../schemas";
import { listAudit, listUsers, userDetail } from "../service";
import { auditColumns } from "./audit";
import type { ConsoleEnv } from "./context";
import { type C, idParam, limitOf, page } from "./page";
import { UserPasskeys } from "./passkeys";
import { type Column, DataTable } from "./table";
import { fmtBytes, fmtDate, P, Stat, StatusPill, short } from "./ui";
import { type FactorSummary, SecondFactor, SignInMethods, UserActions } from "./user-actions";

/** Teams shown on a user's page (the first ones by team age). */
const USER_TEAMS = 20;

export const userColumns: Column<AdminUser>[] = [
  {
    header: "Email",
    cell: (u) => u.email ?? `guest ${short(u.id)}`,
    link: (u) => `${P}/users/${u.id}`,
    linkClass: "strong",
  },
  { header: "Name", cell: (u) => u.name ?? <span class="muted">—</span> },
  { header: "Status", cell: (u) => <StatusPill disabled={u.disabled} role={u.role} anonymous={u.anonymous} /> },
  { header: "Signed up", cell: (u) => fmtDate(u.createdAt) },
];

const UsersPage: FC<{ q: string; items: AdminUser[]; next: string | null; paged: boolean }> = (p) => (
  <>
    <h1>Users</h1>
    <form method="get" action={`${P}/users`} class="toolbar">
      <input
        type="search"
        name="q"
        value={p.q}
        placeholder="Search by email or name"
        aria-label="Search users"
        maxlength={100}
      />
      <button type="submit" class="btn">
        Search
      </button>
      {p.q ? (
        <a href={`${P}/users`} class="btn ghost">
          Clear
        </a>
      ) : null}
    </form>
    <DataTable
      rows={p.items}
      columns={userColumns}
      empty={p.q ? "No user matches this search." : "No users yet."}
      pager={{ base: `${P}/users`, params: { q: p.q }, next: p.next, paged: p.paged }}
    />
  </>
);

type UserTeams = Awaited<ReturnType<typeof teamsOfUser>>;

const userTeamColumns: Column<UserTeams["items"][number]>[] = [
  { header: "Team", cell: (t) => t.name, link: (t) => `${P}/teams/${t.id}`, linkClass: "strong" },
  { header: "Role", cell: (t) => t.role },
  { header: "Joined", cell: (t) => fmtDate(t.joinedAt) },
];

const UserPage: FC<{
  u: AdminUserDetail;
  csrf: string;
  self: boolean;
  audit: AuditEntry[];
  teams: UserTeams;
  methods: SignInMethod[];
  mfa: FactorSummary;
  passkeys: PasskeyInfo[];
}> = ({ u, csrf, self, audit, teams, methods, mfa, passkeys }) => {
  const base = `${P}/users/${u.id}`;
  const who = u.email ?? `guest ${short(u.id)}`;
  return (
    <>
      <p class="crumbs">
        <a href={`${P}/users`}>Users</a> / {who}
      </p>
      <div class="title-row">
        <h1>{u.name ?? who}</h1>
        <StatusPill disabled={u.disabled} role={u.role} anonymous={u.anonymous} />
      </div>
      <div class="grid two">
        <section class="card">
          <h2>Account</h2>
          <dl class="facts">
            <dt>Id</dt>
            <dd>
              <code>{u.id}</code>
            </dd>
            <dt>Email</dt>
            <dd>
              {u.email ?? "—"}{" "}
              {u.email ? <span class="muted">{u.emailVerified ? "(verified)" : "(not verified)"}</span> : null}
            </dd>
            <dt>Name</dt>
            <dd>{u.name ?? "—"}</dd>
            <dt>Role</dt>
            <dd>{u.role}</dd>
            <dt>Signed up</dt>
            <dd>{fmtDate(u.createdAt)}</dd>
            <dt>Updated</dt>
            <dd>{fmtDate(u.updatedAt)}</dd>
          </dl>
        </section>
        <section class="card">
          <h2>Usage</h2>
          <div class="stats compact">
            <Stat label="Live sessions" value={u.counts.sessions} />
            <Stat label="Records" value={u.counts.records} />
            <Stat label="Files" value={u.counts.files} />
            <Stat label="Stored" value={fmtBytes(u.counts.bytes)} />
            <Stat label="Rooms" value={u.counts.rooms} />
            <Stat label="Devices" value={u.counts.devices} href={`${base}/devices`} />
          </div>
        </section>
      </div>
      <UserActions u={u} who={who} csrf={csrf} self={self} />
      <SignInMethods userId={u.id} who={who} methods={methods} csrf={csrf} />
      <SecondFactor userId={u.id} who={who} mfa={mfa} csrf={csrf} />
      <UserPasskeys userId={u.id} who={who} passkeys={passkeys} csrf={csrf} />
      <section class="card">
        <h2>Teams</h2>
        <DataTable rows={teams.items} columns={userTeamColumns} empty="In no team." />
        {teams.more ? <p class="muted small">Showing the first {teams.items.length}.</p> : null}
      </section>
      <section class="card">
        <h2>Admin actions on this user</h2>
        <DataTable rows={audit} columns={auditColumns} empty="None yet." />
      </section>
    </>
  );
};

/** The user of the `:id` param, or 404. */
export async function loadUser(c: C) {
  const u = await userDetail(c.get("db"), idParam(c));
  if (!u) throw new AppError("not_found", "No such user.");
  return u;
}

const SearchQuery = v.object({
  q: v.optional(v.pipe(v.string(), v.trim(), v.maxLength(limits.adminSearchMax)), ""),
  cursor: v.optional(v.pipe(v.string(), v.maxLength(512))),
});

/** Mounted at `/admin/users` (the actions are in user-actions.tsx, the devices in devices.tsx). */
export const users = new Hono<ConsoleEnv>();

users.get("/", async (c) => {
  const q = v.safeParse(SearchQuery, c.req.query());
  const { q: search, cursor } = q.success ? q.output : { q: "", cursor: undefined };
  const res = await listUsers(c.get("db"), { q: search, limit: limitOf(), cursor });
  return page(
    c,
    "Users",
    "users",
    <UsersPage q={search} items={res.items} next={res.nextCursor} paged={cursor !== undefined} />,
  );
});

users.get("/:id", async (c) => {
  const u = await loadUser(c);
  const [audit, teams, methods, mfa, passkeys] = await Promise.all([
    listAudit(c.get("db"), { limit: 10, target: `user:${u.id}` }),
    teamsOfUser(c.get("db"), u.id, USER_TEAMS),
    signInMethods(c.get("db"), u.id),
    factorSummary(c.get("db"), u.id),
    listPasskeys(c.get("db"), u.id),
  ]);
  return page(
    c,
    u.email ?? "User",
    "users",
    <UserPage
      u={u}
      csrf={c.get("csrf")}
      self={u.id === c.get("admin").userId}
      audit={audit.items}
      teams={teams}
      methods={methods}
      mfa={mfa}
      passkeys={passkeys}
    />,
  );
});

/** The audit log: every admin action, newest first (also shown per user on the user's page). */
import { Hono } from "hono";
import type { FC } from "hono/jsx";
import type { AuditEntry } from "../schemas";
import { listAudit } from "../service";
import type { ConsoleEnv } from "./context";
import { limitOf, page } from "./page";
import { type Column, DataTable } from "./table";
import { fmtDate, P, short } from "./ui";

/** An audit target (`user:<id>`, `room:<id>#<seq>`, …), linked when it has a page. */
const Target: FC<{ target: string }> = ({ target }) => {
  const [kind, rest] = [target.slice(0, target.indexOf(":")), target.slice(target.indexOf(":") + 1)];
  if (kind === "user") return <a href={`${P}/users/${rest}`}>{target}</a>;
  if (kind === "room") return <a href={`${P}/rooms/${rest.split("#")[0]}`}>{target}</a>;
  return <span>{target}</span>;
};

export const auditColumns: Column<AuditEntry>[] = [
  { header: "When", cell: (e) => fmtDate(e.at) },
  {
    header: "Who",
    cell: (e) => (e.actorId === "service" ? <span class="pill">service key</span> : short(e.actorId)),
    link: (e) => (e.actorId === "service" ? null : `${P}/users/${e.actorId}`),
  },
  {
    header: "Action",
    cell: (e) => (
      <>
        <code>{e.action}</code>
        {e.detail ? <span class="muted detail"> {JSON.stringify(e.detail)}</span> : null}
      </>
    ),
  },
  { header: "Target", cell: (e) => <Target target={e.target} /> },
  { header: "Request", cell: (e) => <code class="muted">{short(e.requestId)}</code> },
];

const AuditPage: FC<{ items: AuditEntry[]; next: string | null; paged: boolean }> = (p) => (
  <>
    <h1>Audit log</h1>
    <p class="muted">Every admin action, from this console, the admin API and the service key.</p>
    <DataTable
      rows={p.items}
      columns={auditColumns}
      empty="No admin action yet."
      pager={{ base: `${P}/audit`, next: p.next, paged: p.paged }}
    />
  </>
);

/** Mounted at `/admin/audit`. */
export const audit = new Hono<ConsoleEnv>();

audit.get("/", async (c) => {
  const cursor = c.req.query("cursor");
  const res = await listAudit(c.get("db"), { limit: limitOf(), cursor });
  return page(
    c,
    "Audit log",
    "audit",
    <AuditPage items={res.items} next={res.nextCursor} paged={cursor !== undefined} />,
  );
});

/**
 * The app's after hooks: their runs by status (parked ones first: they failed every attempt and wait
 * for a person), with the event, the record, the attempts and the last error, and "Run again".
 */
import { Hono } from "hono";
import type { FC } from "hono/jsx";
import { AppError } from "../../../errors";
import { findCollection } from "../../collections";
import { listRuns, RUN_STATUSES, type RunRow, type RunStatus, runAgain, runCounts } from "../../events";
import { recordAudit } from "../service";
import type { ConsoleEnv } from "./context";
import { actor, idParam, limitOf, page, redirect, unconfirmed } from "./page";
import { type Column, DataTable } from "./table";
import { ActionForm, fmtDate, P, short } from "./ui";

/** A run's record: linked to its console page when it is a collection's and still exists there. */
const recordLink = (r: RunRow) => {
  const source = r.event.slice(0, r.event.lastIndexOf("."));
  if (source === "users") return `${P}/users/${r.recordId}`;
  return findCollection(source) && !r.event.endsWith(".delete") ? `${P}/collections/${source}/${r.recordId}` : null;
};

const PILL: Record<RunStatus, string> = { parked: "danger", pending: "accent", running: "", done: "ok" };

const columns = (csrf: string): Column<RunRow>[] => [
  { header: "When", cell: (r) => fmtDate(r.createdAt) },
  { header: "Event", cell: (r) => <code>{r.event}</code> },
  { header: "Record", cell: (r) => short(r.recordId), link: recordLink },
  { header: "Status", cell: (r) => <span class={`pill ${PILL[r.status]}`}>{r.status}</span> },
  { header: "Attempts", cell: (r) => r.attempts },
  { header: "Last error", cell: (r) => (r.lastError ? <span class="detail">{r.lastError}</span> : "—") },
  {
    header: "",
    cell: (r) =>
      r.status === "parked" || r.status === "done" ? (
        <ActionForm action={`${P}/logic/runs/${r.id}/run-again`} csrf={csrf}>
          <button type="submit" class="btn small">
            Run again
          </button>
        </ActionForm>
      ) : (
        <span class="muted">{r.status === "pending" ? `next ${fmtDate(r.nextAttemptAt)}` : "running"}</span>
      ),
  },
];

const LogicPage: FC<{
  status: RunStatus;
  counts: Record<RunStatus, number>;
  items: RunRow[];
  next: string | null;
  paged: boolean;
  csrf: string;
}> = (p) => (
  <>
    <h1>After hooks</h1>
    <p class="muted">
      Each change the app's after hooks listen to runs once. A run that failed every attempt is parked here until it is
      run again.
    </p>
    <nav class="tabs" aria-label="Status">
      {RUN_STATUSES.map((s) => (
        <a href={`${P}/logic?status=${s}`} class={s === p.status ? "tab active" : "tab"}>
          {s} ({p.counts[s]})
        </a>
      ))}
    </nav>
    <DataTable
      rows={p.items}
      columns={columns(p.csrf)}
      empty={`No ${p.status} run.`}
      pager={{ base: `${P}/logic`, params: { status: p.status }, next: p.next, paged: p.paged }}
    />
  </>
);

/** Mounted at `/admin/logic`. */
export const logic = new Hono<ConsoleEnv>();

const isStatus = (s: string | undefined): s is RunStatus => RUN_STATUSES.includes(s as RunStatus);

logic.get("/", async (c) => {
  const asked = c.req.query("status");
  const status: RunStatus = isStatus(asked) ? asked : "parked";
  const cursor = c.req.query("cursor");
  const [counts, res] = await Promise.all([
    runCounts(c.get("db"), "hook"),
    listRuns(c.get("db"), { target: "hook", status, limit: limitOf(), cursor }),
  ]);
  return page(
    c,
    "After hooks",
    "logic",
    <LogicPage
      status={status}
      counts={counts}
      items={res.items}
      next={res.nextCursor}
      paged={cursor !== undefined}
      csrf={c.get("csrf")}
    />,
  );
});

logic.post("/runs/:id/run-again", async (c) => {
  const id = idParam(c);
  const ask = await unconfirmed(
    c,
    "Run this after hook again? It runs with the change as it was recorded.",
    `${P}/logic`,
  );
  if (ask) return ask;
  if (!(await runAgain(c.env, c.get("db"), id))) throw new AppError("not_found", "No such parked or finished run.");
  await recordAudit(c.get("db"), actor(c), { action: "hook.run_again", target: `run:${id}` });
  return redirect(c, `${P}/logic?status=pending`, "run-queued");
});

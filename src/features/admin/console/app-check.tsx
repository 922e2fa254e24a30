/** App integrity: the guard's mode and what it saw (the monitor counts), and debug tokens (made, shown once, revoked). */
import { Hono } from "hono";
import type { FC } from "hono/jsx";
import { AppError } from "../../../errors";
import { type DebugToken, listDebugTokens, readCounts } from "../../app-check";
import { createDebugToken, revokeDebugToken } from "../app-check";
import type { ConsoleEnv } from "./context";
import { actor, type C, form, idParam, page, redirect, unconfirmed } from "./page";
import { type Column, DataTable } from "./table";
import { ActionForm, ErrorBox, fmtDate, P } from "./ui";

const BASE = `${P}/app-check`;
type Sum = { platform: string; reason: string; count: number };

const countColumns: Column<Sum>[] = [
  { header: "Platform", cell: (s) => s.platform },
  { header: "Reason", cell: (s) => (s.reason === "ok" ? "passed" : <strong>{s.reason}</strong>) },
  { header: "Requests", class: "right", cell: (s) => s.count },
];

const tokenColumns = (csrf: string): Column<DebugToken>[] => [
  { header: "Name", cell: (t) => t.name },
  { header: "Made", cell: (t) => fmtDate(t.createdAt) },
  { header: "Last used", cell: (t) => fmtDate(t.lastUsedAt) },
  {
    header: "",
    class: "right",
    cell: (t) => (
      <ActionForm action={`${BASE}/debug-tokens/${t.id}/revoke`} csrf={csrf} confirm={`Revoke "${t.name}"?`}>
        <button type="submit" class="btn small danger">
          Revoke
        </button>
      </ActionForm>
    ),
  },
];

interface View {
  mode: string;
  guard: string;
  sums: Sum[];
  tokens: DebugToken[];
  csrf: string;
  made?: { name: string; debugToken: string };
  error?: string;
}

const AppCheckPage: FC<View> = (p) => {
  const total = p.sums.reduce((n, s) => n + s.count, 0);
  const failed = p.sums.reduce((n, s) => n + (s.reason === "ok" ? 0 : s.count), 0);
  return (
    <>
      <h1>App integrity</h1>
      <p class="muted">
        Mode <code>{p.mode}</code>, guard <code>{p.guard}</code> (APP_CHECK_MODE, APP_CHECK_GUARD). Last 7 days:{" "}
        {failed} of {total} guarded requests had no valid token, and enforce would refuse them.
      </p>
      <section class="card">
        <h2>What the guard saw</h2>
        <DataTable rows={p.sums} columns={countColumns} empty="Nothing counted yet (mode off, or no traffic)." />
      </section>
      <section class="card">
        <h2>Debug tokens</h2>
        {p.made ? (
          <div class="notice" role="status">
            Debug token <strong>{p.made.name}</strong>, shown only now: <code>{p.made.debugToken}</code>
          </div>
        ) : null}
        {p.error ? <ErrorBox message={p.error} /> : null}
        <form method="post" action={`${BASE}/debug-tokens`} class="toolbar">
          <input type="hidden" name="_csrf" value={p.csrf} />
          <input type="text" name="name" placeholder="Name (e.g. CI simulator)" aria-label="Name" maxlength={100} />
          <button type="submit" class="btn primary">
            Make a debug token
          </button>
        </form>
        <DataTable rows={p.tokens} columns={tokenColumns(p.csrf)} empty="No debug tokens." />
      </section>
    </>
  );
};

async function render(c: C, extra: Pick<View, "made" | "error"> = {}) {
  const sums = new Map<string, Sum>();
  for (const r of await readCounts(c.var.db, 7)) {
    const key = `${r.platform}|${r.reason}`;
    const s = sums.get(key) ?? { platform: r.platform, reason: r.reason, count: 0 };
    s.count += r.count;
    sums.set(key, s);
  }
  const { mode, guard } = c.var.config.appCheck;
  const view = { mode, guard, sums: [...sums.values()], tokens: await listDebugTokens(c.var.db), csrf: c.var.csrf };
  return page(c, "App integrity", "app-check", <AppCheckPage {...view} {...extra} />, extra.error ? 400 : 200);
}

/** Mounted at `/admin/app-check`. */
export const appCheck = new Hono<ConsoleEnv>();

appCheck.get("/", (c) => render(c));

appCheck.post("/debug-tokens", async (c) => {
  const name = ((await form(c)).name ?? "").trim();
  if (!name || name.length > 100) return render(c, { error: "Give the token a name (up to 100 characters)." });
  return render(c, { made: await createDebugToken(c.var.db, actor(c), name) });
});

appCheck.post("/debug-tokens/:id/revoke", async (c) => {
  const id = idParam(c);
  const ask = await unconfirmed(c, "Revoke this debug token? Devices can no longer exchange it.", BASE);
  if (ask) return ask;
  if (!(await revokeDebugToken(c.var.db, actor(c), id))) throw new AppError("not_found", "No such debug token.");
  return redirect(c, BASE, "debug-token-revoked");
});

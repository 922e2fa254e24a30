/** App integrity: the guard's mode and what it counted, and debug tokens (made, shown once, revoked). */
import { Hono } from "hono";
import type { FC } from "hono/jsx";
import { AppError } from "../../../errors";
import { type CountRow, type DebugToken, listDebugTokens, readCounts } from "../../app-check";
import { createDebugToken, revokeDebugToken } from "../app-check";
import type { ConsoleEnv } from "./context";
import { actor, type C, form, idParam, page, redirect, unconfirmed } from "./page";
import { type Column, DataTable } from "./table";
import { ActionForm, fmtDate, P } from "./ui";

const BASE = `${P}/app-check`;

const countColumns: Column<CountRow>[] = [
  { header: "Platform", cell: (s) => s.platform },
  { header: "Reason", cell: (s) => s.reason },
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
      <ActionForm action={`${BASE}/debug-tokens/${t.id}/revoke`} csrf={csrf} confirm={`Revoke ${t.name}?`}>
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
  sums: CountRow[];
  tokens: DebugToken[];
  csrf: string;
  made?: { name: string; debugToken: string };
}

const AppCheckPage: FC<View> = (p) => {
  const total = p.sums.reduce((n, s) => n + s.count, 0);
  const failed = p.sums.reduce((n, s) => n + (s.reason === "ok" ? 0 : s.count), 0);
  return (
    <>
      <h1>App integrity</h1>
      <p class="muted">
        Mode <code>{p.mode}</code>, guard <code>{p.guard}</code>. Last 7 days: enforce would refuse {failed} of {total}{" "}
        guarded requests.
      </p>
      <section class="card">
        <h2>What the guard saw</h2>
        <DataTable rows={p.sums} columns={countColumns} empty="Nothing counted yet." />
      </section>
      <section class="card">
        <h2>Debug tokens</h2>
        {p.made ? (
          <div class="notice" role="status">
            Debug token <strong>{p.made.name}</strong>, shown only now: <code>{p.made.debugToken}</code>
          </div>
        ) : null}
        <ActionForm action={`${BASE}/debug-tokens`} csrf={p.csrf} class="toolbar">
          <input type="text" name="name" aria-label="Name" maxlength={100} />
          <button type="submit" class="btn primary">
            Make a debug token
          </button>
        </ActionForm>
        <DataTable rows={p.tokens} columns={tokenColumns(p.csrf)} empty="No debug tokens." />
      </section>
    </>
  );
};

async function render(c: C, made?: View["made"]) {
  const { mode, guard } = c.get("config").appCheck;
  const sums = await readCounts(c.get("db"), 7);
  const view = { mode, guard, sums, tokens: await listDebugTokens(c.get("db")), csrf: c.get("csrf") };
  return page(c, "App integrity", "app-check", <AppCheckPage {...view} made={made} />);
}

/** Mounted at `/admin/app-check`. */
export const appCheck = new Hono<ConsoleEnv>();

appCheck.get("/", (c) => render(c));

appCheck.post("/debug-tokens", async (c) => {
  const name = ((await form(c)).name ?? "").trim();
  if (!name || name.length > 100) throw new AppError("validation_failed", "A name of 1 to 100 characters, please.");
  return render(c, await createDebugToken(c.get("db"), actor(c), name));
});

appCheck.post("/debug-tokens/:id/revoke", async (c) => {
  const id = idParam(c);
  const ask = await unconfirmed(c, "Revoke this debug token? Devices can no longer exchange it.", BASE);
  if (ask) return ask;
  if (!(await revokeDebugToken(c.get("db"), actor(c), id))) throw new AppError("not_found", "No such debug token.");
  return redirect(c, BASE, "debug-token-revoked");
});

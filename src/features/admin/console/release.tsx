/**
 * Release controls: the remote config keys (code default, value, rules), a key's rule editor, "preview as" a
 * client, and the short links with their open counts. Changes go through the admin API's functions (audited).
 */
import { Hono } from "hono";
import type { Child, FC } from "hono/jsx";
import * as v from "valibot";
import type { Vars } from "../../../env";
import { AppError } from "../../../errors";
import { PreviewQuery, PutConfigBody } from "../../release";
import { clearConfig, configEntries, previewConfig, putConfig } from "../release";
import type { ConsoleEnv } from "./context";
import { actor, type C, type FieldErrors, fieldErrors, form, page, redirect, unconfirmed } from "./page";
import { type Column, DataTable } from "./table";
import { ActionForm, ErrorBox, fmtDate, P } from "./ui";

type Entry = Awaited<ReturnType<typeof configEntries>>["items"][number];
const json = (x: unknown) => JSON.stringify(x);

const keyColumns: Column<Entry>[] = [
  { header: "Key", cell: (e) => e.key, link: (e) => `${P}/config?edit=${e.key}` },
  { header: "Code default", cell: (e) => json(e.default) },
  { header: "Value", cell: (e) => (e.set ? json(e.value) : "default") },
  { header: "Rules", cell: (e) => e.rules.length },
  { header: "Updated", cell: (e) => fmtDate(e.updatedAt) },
];

const KeyForm: FC<{ e: Entry; csrf: string; values?: Record<string, string>; errors?: FieldErrors }> = (p) => (
  <section class="card">
    <h2>{p.e.key}</h2>
    {p.errors ? <ErrorBox message="Not valid." errors={p.errors} /> : null}
    <form method="post" action={`${P}/config/${p.e.key}`} class="stack">
      <input type="hidden" name="_csrf" value={p.csrf} />
      Value (JSON; code default {json(p.e.default)})
      <input name="value" aria-label="Value" value={p.values?.value ?? json(p.e.value)} />
      Rules (JSON: [{'{ "when": {…}, "value": … }'}], first match wins)
      <textarea name="rules" aria-label="Rules" rows={8}>
        {p.values?.rules ?? JSON.stringify(p.e.rules, null, 2)}
      </textarea>
      <button type="submit" class="btn primary">
        Save
      </button>
    </form>
    {p.e.set ? (
      <ActionForm action={`${P}/config/${p.e.key}/reset`} csrf={p.csrf}>
        <button type="submit" class="btn danger">
          Reset to the code default
        </button>
      </ActionForm>
    ) : null}
  </section>
);

const ConfigPage: FC<{
  items: Entry[];
  version: number;
  q: Record<string, string>;
  preview: Record<string, unknown> | null;
  edit: Child;
}> = (p) => (
  <>
    <h1>Remote config</h1>
    <p class="muted">Version {p.version}</p>
    {p.edit}
    <DataTable rows={p.items} columns={keyColumns} empty="No keys." />
    <h2>Preview as</h2>
    <form method="get" action={`${P}/config`} class="toolbar">
      {(["platform", "version", "userId", "country"] as const).map((name) => (
        <input name={name} value={p.q[name] ?? ""} placeholder={name} aria-label={name} maxlength={64} />
      ))}
      <button type="submit" class="btn">
        Preview
      </button>
    </form>
    {p.preview ? <pre class="card">{JSON.stringify(p.preview, null, 2)}</pre> : null}
  </>
);

/** Mounted at `/admin/config`. */
export const release = new Hono<ConsoleEnv>();

const entryOf = async (c: Vars<ConsoleEnv["Variables"]>, key: string) => {
  const e = (await configEntries(c.get("db"))).items.find((i) => i.key === key);
  if (!e) throw new AppError("not_found", "No such config key.");
  return e;
};

/** The page, with `edit` (a key's form) above the table when asked. */
async function configPage(c: C, edit?: Child, status: 200 | 400 = 200) {
  const q = c.req.query();
  const asked = v.safeParse(
    PreviewQuery,
    Object.fromEntries(Object.entries(q).filter(([k, x]) => x && k !== "edit" && k !== "done")),
  );
  const { items, version } = await configEntries(c.get("db"));
  const e = items.find((i) => i.key === q.edit);
  edit ??= e ? <KeyForm e={e} csrf={c.get("csrf")} /> : null;
  const preview =
    q.platform !== undefined && asked.success ? (await previewConfig(c.get("db"), asked.output)).values : null;
  return page(
    c,
    "Remote config",
    "config",
    <ConfigPage items={items} version={version} q={q} preview={preview} edit={edit} />,
    status,
  );
}

release.get("/", (c) => configPage(c));

release.post("/:key", async (c) => {
  const e = await entryOf(c, c.req.param("key"));
  const f = await form(c);
  const again = (errors: FieldErrors) =>
    configPage(c, <KeyForm e={e} csrf={c.get("csrf")} values={f} errors={errors} />, 400);
  let body: unknown;
  try {
    body = { value: JSON.parse(f.value ?? ""), rules: JSON.parse(f.rules || "[]") };
  } catch {
    return again([{ path: "body", message: "not valid JSON" }]);
  }
  const parsed = v.safeParse(PutConfigBody, body);
  if (!parsed.success) return again(fieldErrors("body", parsed.issues));
  try {
    const { announce } = await putConfig(c.env, c.get("db"), actor(c), e.key, parsed.output);
    c.executionCtx.waitUntil(announce);
  } catch (err) {
    if (err instanceof AppError && err.code === "validation_failed") return again(err.extra.errors);
    throw err;
  }
  return redirect(c, `${P}/config?edit=${e.key}`, "saved");
});

release.post("/:key/reset", async (c) => {
  const e = await entryOf(c, c.req.param("key"));
  const ask = await unconfirmed(
    c,
    `Take ${e.key} back to its code default? Its value and rules are removed.`,
    `${P}/config/${e.key}`,
  );
  if (ask) return ask;
  const { announce } = await clearConfig(c.env, c.get("db"), actor(c), e.key);
  c.executionCtx.waitUntil(announce);
  return redirect(c, `${P}/config?edit=${e.key}`, "config-reset");
});

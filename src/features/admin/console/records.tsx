/** One record of a collection: its edit form (validated by the collection's PATCH schema) and deletion. */
import { Hono } from "hono";
import type { FC } from "hono/jsx";
import * as v from "valibot";
import { AppError } from "../../../errors";
import {
  type Collection,
  collectionSchemas,
  deleteRecord,
  getRecord,
  type RecordRow,
  updateRecord,
} from "../../collections";
import { recordAudit } from "../service";
import { collectionOf, privateRecords } from "./collections";
import type { ConsoleEnv } from "./context";
import { type FieldInput, fieldInputs, formToValues } from "./forms";
import {
  actor,
  type FieldErrors,
  fieldErrors,
  form,
  idParam,
  type PageStatus,
  page,
  redirect,
  SERVICE,
  unconfirmed,
  writer,
} from "./page";
import { ActionForm, ErrorBox, fmtDate, P, short } from "./ui";

const Input: FC<{ f: FieldInput }> = ({ f }) => {
  if (f.control === "select")
    return (
      <select name={f.name} id={`f-${f.name}`}>
        {f.options.map((o) => (
          <option value={o} selected={o === f.value}>
            {o}
          </option>
        ))}
      </select>
    );
  if (f.control === "textarea")
    return (
      <textarea name={f.name} id={`f-${f.name}`} rows={f.rows}>
        {f.value}
      </textarea>
    );
  return (
    <input
      type={f.control}
      step={f.control === "number" ? "any" : undefined}
      name={f.name}
      id={`f-${f.name}`}
      value={f.value}
    />
  );
};

const RecordPage: FC<{
  col: Collection;
  r: RecordRow;
  csrf: string;
  values?: Record<string, string> | undefined;
  error?: { message: string; errors?: FieldErrors } | undefined;
}> = (p) => {
  const base = `${P}/collections/${p.col.name}`;
  const inputs = fieldInputs(p.col, p.r, p.values);
  return (
    <>
      <p class="crumbs">
        <a href={base}>{p.col.name}</a> / <span class="mono">{short(p.r.id)}</span>
      </p>
      <h1>Record</h1>
      <div class="grid two">
        <section class="card">
          <h2>Edit</h2>
          {p.error ? <ErrorBox message={p.error.message} errors={p.error.errors} /> : null}
          <form method="post" action={`${base}/${p.r.id}`} class="stack">
            <input type="hidden" name="_csrf" value={p.csrf} />
            <input type="hidden" name="_version" value={String(p.r.version)} />
            {inputs.map((f) => (
              <label for={`f-${f.name}`}>
                <span>
                  {f.name} <span class="muted">{f.hint}</span>
                </span>
                <Input f={f} />
              </label>
            ))}
            <div class="actions">
              <button type="submit" class="btn primary">
                Save
              </button>
            </div>
          </form>
        </section>
        <section class="card">
          <h2>Details</h2>
          <dl class="facts">
            <dt>Id</dt>
            <dd>
              <code>{p.r.id}</code>
            </dd>
            <dt>Owner</dt>
            <dd>{p.r.ownerId ? <a href={`${P}/users/${p.r.ownerId}`}>{p.r.ownerId}</a> : "— (service)"}</dd>
            {p.col.scope === "team" ? (
              <>
                <dt>Team</dt>
                <dd>
                  <a href={`${P}/teams/${String(p.r.teamId)}`}>{String(p.r.teamId)}</a>
                </dd>
              </>
            ) : null}
            {Object.entries(p.col.fields).map(([key, f]) =>
              f.ref && typeof p.r[key] === "string" ? (
                <>
                  <dt>{key}</dt>
                  <dd>
                    <a
                      href={
                        f.ref.target === "users"
                          ? `${P}/users/${String(p.r[key])}`
                          : `${P}/collections/${f.ref.target}/${String(p.r[key])}`
                      }
                    >
                      {f.ref.target} {String(p.r[key])}
                    </a>
                  </dd>
                </>
              ) : null,
            )}
            <dt>Created</dt>
            <dd>{fmtDate(String(p.r.createdAt))}</dd>
            <dt>Updated</dt>
            <dd>{fmtDate(String(p.r.updatedAt))}</dd>
            <dt>Version</dt>
            <dd>{p.r.version}</dd>
          </dl>
          <ActionForm
            action={`${base}/${p.r.id}/delete`}
            csrf={p.csrf}
            confirm="Delete this record? Synced clients will drop it too."
          >
            <button type="submit" class="btn danger">
              Delete record
            </button>
          </ActionForm>
        </section>
      </div>
    </>
  );
};

/** Mounted at `/admin/collections`. */
export const records = new Hono<ConsoleEnv>();

records.get("/:name/:id", async (c) => {
  const col = collectionOf(c);
  const r = await getRecord(c.get("db"), col, SERVICE, idParam(c));
  // A record only its owner (or only the service key) may read: the admin's look at it is recorded.
  if (privateRecords(col))
    await recordAudit(c.get("db"), actor(c), { action: "record.view", target: `${col.name}:${r.id}` });
  return page(c, `${col.name} record`, `collection:${col.name}`, <RecordPage col={col} r={r} csrf={c.get("csrf")} />);
});

records.post("/:name/:id", async (c) => {
  const col = collectionOf(c);
  const id = idParam(c);
  const f = await form(c);
  const parsed = v.safeParse(collectionSchemas(col).patch, formToValues(col, f));
  const version = Number(f._version);
  const again = async (message: string, errors?: FieldErrors, status: PageStatus = 400) => {
    const r = await getRecord(c.get("db"), col, SERVICE, id);
    return page(
      c,
      `${col.name} record`,
      `collection:${col.name}`,
      <RecordPage col={col} r={r} csrf={c.get("csrf")} values={f} error={{ message, errors }} />,
      status,
    );
  };
  if (!parsed.success) return again("Not saved: some fields are not valid.", fieldErrors("body", parsed.issues));
  try {
    await updateRecord(writer(c), col, SERVICE, id, parsed.output, Number.isSafeInteger(version) ? [version] : null);
  } catch (e) {
    if (e instanceof AppError && e.code === "version_conflict")
      return again("Not saved: someone changed this record meanwhile. Review it and save again.", undefined, 412);
    // The app's before hook refused it (its own code), or the data it made is not valid.
    if (e instanceof AppError && e.status >= 400 && e.status < 500)
      return again(`Not saved: ${e.detail ?? e.message}`, e.extra.errors, e.status === 422 ? 422 : 400);
    throw e;
  }
  return redirect(c, `${P}/collections/${col.name}/${id}`, "saved");
});

records.post("/:name/:id/delete", async (c) => {
  const col = collectionOf(c);
  const id = idParam(c);
  const ask = await unconfirmed(
    c,
    "Delete this record? Synced clients will drop it too.",
    `${P}/collections/${col.name}/${id}`,
  );
  if (ask) return ask;
  await deleteRecord(writer(c), col, SERVICE, id, null);
  return redirect(c, `${P}/collections/${col.name}`, "record-deleted");
});

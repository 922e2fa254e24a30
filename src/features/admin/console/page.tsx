/**
 * What every console route uses: a page in the frame, a redirect with a notice, the posted form,
 * the confirmation step of destructive actions, id params, and the acting admin.
 */
import type { Context } from "hono";
import type { Child, FC } from "hono/jsx";
import type * as v from "valibot";
import { limits } from "../../../config";
import type { Principal } from "../../../env";
import { AppError } from "../../../errors";
import { isId } from "../../../lib/ids";
import type { Writer } from "../../collections";
import { type Actor, auditStatement } from "../service";
import type { ConsoleEnv } from "./context";
import { ActionForm, isNotice, Layout, type Notice, type Section } from "./ui";

export type C = Context<ConsoleEnv>;

export type FieldErrors = { path: string; message: string }[] | undefined;

/** The statuses a console page answers with. */
export type PageStatus = 200 | 400 | 403 | 404 | 409 | 412 | 422 | 429 | 500;

/** The service principal: the console acts with the service key's reach (rules do not apply to admins). */
export const SERVICE: Principal = { kind: "service" };

export const actor = (c: C): Actor => ({
  id: c.get("admin").userId,
  requestId: c.get("requestId"),
  clientRequestId: c.get("clientRequestId"),
});

/** The request as a writer of collection records: the same write path as the API's routes. */
export const writer = (c: C): Writer => ({
  db: c.get("db"),
  env: c.env,
  waitUntil: (work) => c.executionCtx.waitUntil(work),
  audit: (e, when) => auditStatement(c.get("db"), actor(c), e, when),
});

/** A page in the frame, with the signed-in admin's navigation. */
export function page(c: C, title: string, section: Section | undefined, body: Child, status: PageStatus = 200) {
  const done = c.req.query("done");
  const admin = c.get("admin");
  return c.html(
    <Layout
      title={title}
      appName={c.get("config").appName}
      admin={admin}
      csrf={c.get("csrf")}
      section={section}
      notice={isNotice(done) ? done : undefined}
    >
      {body}
    </Layout>,
    status,
  );
}

export const redirect = (c: C, to: string, done?: Notice) =>
  c.redirect(done ? `${to}${to.includes("?") ? "&" : "?"}done=${done}` : to, 303);

/** The parsed form (text fields only; files are ignored). */
export async function form(c: C): Promise<Record<string, string>> {
  const body = await c.req.parseBody();
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(body)) if (typeof val === "string") out[k] = val;
  return out;
}

const ConfirmPage: FC<{
  action: string;
  csrf: string;
  message: string;
  fields: Record<string, string>;
  back: string;
}> = (p) => (
  <section class="card confirm">
    <h1>Are you sure?</h1>
    <p>{p.message}</p>
    <div class="actions">
      <ActionForm action={p.action} csrf={p.csrf} fields={{ ...p.fields, confirm: "yes" }}>
        <button type="submit" class="btn danger">
          Yes, do it
        </button>
      </ActionForm>
      <a href={p.back} class="btn ghost">
        Cancel
      </a>
    </div>
  </section>
);

/** A destructive action's first POST: the confirmation page instead (nothing happens yet). */
export async function unconfirmed(c: C, message: string, back: string): Promise<Response | null> {
  const f = await form(c);
  if (f.confirm === "yes") return null;
  const { _csrf, confirm, ...fields } = f;
  return page(
    c,
    "Confirm",
    undefined,
    <ConfirmPage action={c.req.path} csrf={c.get("csrf")} message={message} fields={fields} back={back} />,
  );
}

/** A path param that must be an id; anything else is a page that does not exist. */
export const idParam = (c: C, name = "id") => {
  const id = c.req.param(name) ?? "";
  if (!isId(id)) throw new AppError("not_found", "No such page.");
  return id;
};

/** Rows per list page. */
export const limitOf = () => limits.adminPageSize;

/** valibot issues as the API's `errors` (path, message). */
export const fieldErrors = (target: string, issues: readonly v.BaseIssue<unknown>[]) =>
  issues.map((i) => ({ path: i.path?.map((p) => String(p.key)).join(".") || target, message: i.message }));

/**
 * Webhooks: the list and the create form (the secret shown once), a webhook's page with its deliveries,
 * rotating its secret (shown once), enabling or disabling it, deleting it, and sending a delivery again.
 */
import { Hono } from "hono";
import type { FC } from "hono/jsx";
import * as v from "valibot";
import { AppError } from "../../../errors";
import { enqueue } from "../../../lifecycle";
import type { EventJob } from "../../logic";
import {
  CreateWebhookBody,
  createWebhook,
  type Delivery,
  deleteWebhook,
  getWebhook,
  listDeliveries,
  listWebhooks,
  redeliver,
  rotateWebhookSecret,
  setWebhookEnabled,
  type Webhook,
  webhookEventNames,
  webhookUrlProblem,
} from "../../webhooks";
import { auditStatement } from "../service";
import type { ConsoleEnv } from "./context";
import {
  actor,
  type C,
  type FieldErrors,
  fieldErrors,
  form,
  idParam,
  limitOf,
  page,
  redirect,
  unconfirmed,
} from "./page";
import { type Column, DataTable } from "./table";
import { ActionForm, ErrorBox, fmtDate, P } from "./ui";

const state = (w: Webhook) =>
  w.enabled ? (
    w.failingSince ? (
      <span class="pill danger">failing</span>
    ) : (
      <span class="pill ok">enabled</span>
    )
  ) : (
    <span class="pill">disabled</span>
  );

const webhookColumns: Column<Webhook>[] = [
  { header: "URL", cell: (w) => w.url, link: (w) => `${P}/webhooks/${w.id}`, linkClass: "strong" },
  { header: "Events", cell: (w) => w.events.join(", ") },
  { header: "State", cell: state },
  { header: "Failing since", cell: (w) => fmtDate(w.failingSince) },
  { header: "Created", cell: (w) => fmtDate(w.createdAt) },
];

const CreateForm: FC<{ csrf: string; values?: Record<string, string>; error?: FieldErrors }> = (p) => (
  <section class="card">
    <h2>New webhook</h2>
    {p.error ? <ErrorBox message="Not created: some fields are not valid." errors={p.error} /> : null}
    <form method="post" action={`${P}/webhooks`} class="stack">
      <input type="hidden" name="_csrf" value={p.csrf} />
      <label for="f-url">
        <span>
          URL <span class="muted">(https:, a public address)</span>
        </span>
        <input type="url" name="url" id="f-url" required value={p.values?.url ?? ""} />
      </label>
      <label for="f-events">
        <span>
          Events <span class="muted">(separated by commas: {webhookEventNames.join(", ")})</span>
        </span>
        <input type="text" name="events" id="f-events" required value={p.values?.events ?? ""} />
      </label>
      <div class="actions">
        <button type="submit" class="btn primary">
          Create
        </button>
      </div>
    </form>
  </section>
);

const WebhooksPage: FC<{
  items: Webhook[];
  next: string | null;
  paged: boolean;
  csrf: string;
  values?: Record<string, string>;
  error?: FieldErrors;
}> = (p) => (
  <>
    <h1>Webhooks</h1>
    <DataTable
      rows={p.items}
      columns={webhookColumns}
      empty="No webhooks yet."
      pager={{ base: `${P}/webhooks`, next: p.next, paged: p.paged }}
    />
    <CreateForm csrf={p.csrf} values={p.values} error={p.error} />
  </>
);

/** A secret, shown once (after creating or rotating). */
const SecretPage: FC<{ webhook: Webhook; secret: string; rotated: boolean }> = (p) => (
  <>
    <p class="crumbs">
      <a href={`${P}/webhooks`}>Webhooks</a> / {p.webhook.url}
    </p>
    <h1>{p.rotated ? "New signing secret" : "Webhook created"}</h1>
    <section class="card">
      <p>
        The signing secret, shown this once: copy it to the receiver now.
        {p.rotated ? " The previous secret keeps signing deliveries (a second v1=) for 24 hours." : ""}
      </p>
      <p>
        <code class="secret">{p.secret}</code>
      </p>
      <p>
        <a href={`${P}/webhooks/${p.webhook.id}`}>Go to the webhook</a>
      </p>
    </section>
  </>
);

const deliveryColumns = (hookId: string, csrf: string): Column<Delivery>[] => [
  { header: "Delivery", cell: (d) => <code>{d.id}</code> },
  { header: "Event", cell: (d) => d.event },
  { header: "Status", cell: (d) => d.status },
  { header: "Attempts", cell: (d) => d.attempts },
  { header: "Last error", cell: (d) => d.lastError ?? "—" },
  { header: "Next attempt", cell: (d) => fmtDate(d.nextAttemptAt) },
  {
    header: "",
    cell: (d) =>
      d.status === "running" ? null : (
        <ActionForm action={`${P}/webhooks/${hookId}/deliveries/${d.id}/redeliver`} csrf={csrf}>
          <button type="submit" class="btn small">
            Redeliver
          </button>
        </ActionForm>
      ),
  },
];

const WebhookPage: FC<{ w: Webhook; deliveries: Delivery[]; next: string | null; paged: boolean; csrf: string }> = (
  p,
) => (
  <>
    <p class="crumbs">
      <a href={`${P}/webhooks`}>Webhooks</a> / {p.w.url}
    </p>
    <h1>Webhook</h1>
    <section class="card">
      <dl class="facts">
        <dt>URL</dt>
        <dd>{p.w.url}</dd>
        <dt>Events</dt>
        <dd>{p.w.events.join(", ")}</dd>
        <dt>State</dt>
        <dd>{state(p.w)}</dd>
        <dt>Failing since</dt>
        <dd>{fmtDate(p.w.failingSince)}</dd>
        <dt>Disabled at</dt>
        <dd>{fmtDate(p.w.disabledAt)}</dd>
        <dt>Created</dt>
        <dd>{fmtDate(p.w.createdAt)}</dd>
      </dl>
      <div class="actions">
        <ActionForm action={`${P}/webhooks/${p.w.id}/${p.w.enabled ? "disable" : "enable"}`} csrf={p.csrf}>
          <button type="submit" class="btn">
            {p.w.enabled ? "Disable" : "Enable"}
          </button>
        </ActionForm>
        <ActionForm action={`${P}/webhooks/${p.w.id}/rotate`} csrf={p.csrf}>
          <button type="submit" class="btn warn">
            Rotate secret
          </button>
        </ActionForm>
        <ActionForm action={`${P}/webhooks/${p.w.id}/delete`} csrf={p.csrf}>
          <button type="submit" class="btn danger">
            Delete
          </button>
        </ActionForm>
      </div>
    </section>
    <h2>Deliveries</h2>
    <DataTable
      rows={p.deliveries}
      columns={deliveryColumns(p.w.id, p.csrf)}
      empty="No deliveries yet."
      pager={{ base: `${P}/webhooks/${p.w.id}`, next: p.next, paged: p.paged }}
    />
  </>
);

const audit =
  (c: C, action: string, id: string, detail?: Record<string, unknown>) =>
  (when: Parameters<typeof auditStatement>[3]) =>
    auditStatement(c.get("db"), actor(c), { action, target: `webhook:${id}`, detail }, when);

async function webhookOf(c: C): Promise<Webhook> {
  const w = await getWebhook(c.get("db"), idParam(c));
  if (!w) throw new AppError("not_found", "No such webhook.");
  return w;
}

/** Mounted at `/admin/webhooks`. */
export const webhooks = new Hono<ConsoleEnv>();

async function listPage(c: C, values?: Record<string, string>, error?: FieldErrors) {
  const cursor = c.req.query("cursor");
  const res = await listWebhooks(c.get("db"), { limit: limitOf(), cursor });
  return page(
    c,
    "Webhooks",
    "webhooks",
    <WebhooksPage
      items={res.items}
      next={res.nextCursor}
      paged={cursor !== undefined}
      csrf={c.get("csrf")}
      values={values}
      error={error}
    />,
    error ? 400 : 200,
  );
}

webhooks.get("/", (c) => listPage(c));

webhooks.post("/", async (c) => {
  const f = await form(c);
  const input = { url: f.url ?? "", events: (f.events ?? "").split(/[\s,]+/).filter(Boolean) };
  const parsed = v.safeParse(CreateWebhookBody, input);
  if (!parsed.success) return listPage(c, f, fieldErrors("body", parsed.issues));
  const problem = webhookUrlProblem(parsed.output.url, c.env.ENVIRONMENT);
  if (problem) return listPage(c, f, [{ path: "url", message: problem }]);
  const { webhook, secret } = await createWebhook(
    c.get("db"),
    c.get("config").jwtSecret,
    { ...parsed.output, createdBy: c.get("admin").userId },
    (id) => audit(c, "webhook.create", id, { url: parsed.output.url, events: parsed.output.events }),
  );
  return page(c, "Webhook created", "webhooks", <SecretPage webhook={webhook} secret={secret} rotated={false} />);
});

webhooks.get("/:id", async (c) => {
  const w = await webhookOf(c);
  const cursor = c.req.query("cursor");
  const res = await listDeliveries(c.get("db"), w.id, { limit: limitOf(), cursor });
  return page(
    c,
    "Webhook",
    "webhooks",
    <WebhookPage
      w={w}
      deliveries={res.items}
      next={res.nextCursor}
      paged={cursor !== undefined}
      csrf={c.get("csrf")}
    />,
  );
});

webhooks.post("/:id/rotate", async (c) => {
  const w = await webhookOf(c);
  const rotated = await rotateWebhookSecret(
    c.get("db"),
    c.get("config").jwtSecret,
    w.id,
    audit(c, "webhook.rotate_secret", w.id),
  );
  if (!rotated) throw new AppError("not_found", "No such webhook.");
  return page(c, "New signing secret", "webhooks", <SecretPage webhook={w} secret={rotated.secret} rotated />);
});

for (const [path, enabled] of [
  ["enable", true],
  ["disable", false],
] as const) {
  webhooks.post(`/:id/${path}`, async (c) => {
    const id = idParam(c);
    const w = await setWebhookEnabled(c.get("db"), id, enabled, audit(c, `webhook.${path}`, id));
    if (!w) throw new AppError("not_found", "No such webhook.");
    return redirect(c, `${P}/webhooks/${id}`, enabled ? "webhook-enabled" : "webhook-disabled");
  });
}

webhooks.post("/:id/delete", async (c) => {
  const id = idParam(c);
  const ask = await unconfirmed(
    c,
    "Delete this webhook and its deliveries? Nothing more is sent to it.",
    `${P}/webhooks/${id}`,
  );
  if (ask) return ask;
  if (!(await deleteWebhook(c.get("db"), id, audit(c, "webhook.delete", id))))
    throw new AppError("not_found", "No such webhook.");
  return redirect(c, `${P}/webhooks`, "webhook-deleted");
});

webhooks.post("/:id/deliveries/:deliveryId/redeliver", async (c) => {
  const w = await webhookOf(c);
  const deliveryId = idParam(c, "deliveryId");
  if (!w.enabled) throw new AppError("conflict", "The webhook is disabled; enable it first.");
  const result = await redeliver(c.get("db"), w.id, deliveryId, audit(c, "webhook.redeliver", w.id, { deliveryId }));
  if (result === "missing") throw new AppError("not_found", "No such delivery.");
  if (result === "running") throw new AppError("conflict", "An attempt of this delivery is under way.");
  await enqueue<EventJob>(c.env, { type: "events.run", id: deliveryId });
  return redirect(c, `${P}/webhooks/${w.id}`, "redelivered");
});

/**
 * The webhooks admin API: create (secret shown once, stored sealed, listener rows in the same batch),
 * list, read, enable/disable, delete (listener rows go, writes stop making events), rotate, the
 * deliveries list and redelivery, validation, audit rows.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import { app } from "../../../src/router";
import { api, expectProblem, freshIp, serviceKey, signup } from "../../helpers/api";
import { signupAdmin } from "../admin/helpers";
import { createHook, forgetWebhooks, hookRow, listenersOf, makeRun, receiverName, receiverUrl } from "./helpers";

const SK = serviceKey();

async function auditOf(id: string) {
  const r = await env.DB.prepare("SELECT actor_id, action, detail FROM audit_log WHERE target = ? ORDER BY id")
    .bind(`webhook:${id}`)
    .all<{ actor_id: string; action: string; detail: string | null }>();
  return r.results.map((x) => [x.actor_id, x.action, JSON.parse(x.detail ?? "{}")]);
}

const eventsOf = async (recordId: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM events WHERE record_id = ?").bind(recordId).first<{ n: number }>())
    ?.n;
const eventCount = async (name: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM events WHERE event = ?").bind(name).first<{ n: number }>())?.n;

// Leave no listener behind for the files after this one.
afterAll(forgetWebhooks);

describe("POST /v1/admin/webhooks", () => {
  it("creates a webhook: 201 with its secret once, stored sealed, with its listener rows and audit row", async () => {
    const url = receiverUrl(receiverName());
    const res = await api("/v1/admin/webhooks", { token: SK, body: { url, events: ["lists.create", "users.delete"] } });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({
      url,
      events: ["lists.create", "users.delete"],
      enabled: true,
      failingSince: null,
    });
    expect(res.body.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const row = (await hookRow(res.body.id))!;
    expect(row.secret).not.toContain(res.body.secret);
    expect(row.secret).not.toContain(res.body.secret.slice(6));
    expect(await listenersOf(res.body.id)).toEqual(["lists.create", "users.delete"]);
    const audit = await auditOf(res.body.id);
    expect(audit).toEqual([["service", "webhook.create", { url, events: ["lists.create", "users.delete"] }]]);
    expect(JSON.stringify(audit)).not.toContain(res.body.secret);
    // The secret is never shown again.
    const read = await api(`/v1/admin/webhooks/${res.body.id}`, { token: SK });
    expect(read.status).toBe(200);
    expect(read.body.secret).toBeUndefined();
    expect(read.text).not.toContain(res.body.secret);
    await api(`/v1/admin/webhooks/${res.body.id}`, { method: "DELETE", token: SK });
  });

  it("is open to an admin's token (created_by is the admin) and accepts `*`; duplicates collapse", async () => {
    const admin = await signupAdmin();
    const res = await api("/v1/admin/webhooks", {
      token: admin.accessToken,
      body: { url: receiverUrl(receiverName()), events: ["*", "*"] },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body.events).toEqual(["*"]);
    expect((await hookRow(res.body.id))!.created_by).toBe(admin.id);
    expect((await auditOf(res.body.id))[0]!.slice(0, 2)).toEqual([admin.id, "webhook.create"]);
    await api(`/v1/admin/webhooks/${res.body.id}`, { method: "DELETE", token: SK });
  });

  it("refuses unknown events, no events, bad URLs and unknown fields (400 naming the field)", async () => {
    const url = receiverUrl(receiverName());
    const cases: [unknown, string][] = [
      [{ url, events: ["notes.create", "nope.create"] }, "events.1"],
      [{ url, events: ["notes.created"] }, "events.0"],
      [{ url, events: ["users.update"] }, "events.0"],
      [{ url, events: [] }, "events"],
      [{ url, events: "notes.create" }, "events"],
      [{ events: ["notes.create"] }, "url"],
      [{ url: "not a url", events: ["notes.create"] }, "url"],
      [{ url, events: ["notes.create"], secret: "mine" }, "secret"],
    ];
    for (const [body, path] of cases) {
      const res = await api("/v1/admin/webhooks", { token: SK, body });
      const p = expectProblem(res, 400, "validation_failed");
      expect(
        p.errors?.map((e) => e.path),
        JSON.stringify(body),
      ).toContain(path);
    }
  });

  it("with Idempotency-Key, a retried create answers the first webhook and makes no second one", async () => {
    const url = receiverUrl(receiverName());
    const opts = {
      token: SK,
      body: { url, events: ["notes.create"] },
      headers: { "idempotency-key": crypto.randomUUID() },
    };
    const first = await api("/v1/admin/webhooks", opts);
    const again = await api("/v1/admin/webhooks", opts);
    expect(first.status).toBe(201);
    expect(again.body.id).toBe(first.body.id);
    const n = await env.DB.prepare("SELECT count(*) AS n FROM webhooks WHERE url = ?").bind(url).first<{ n: number }>();
    expect(n?.n).toBe(1);
    await api(`/v1/admin/webhooks/${first.body.id}`, { method: "DELETE", token: SK });
  });
});

describe("listener rows", () => {
  it("make writes record events while the webhook exists, and none after it is deleted", async () => {
    const user = await signup();
    const note = async () => {
      const res = await api("/v1/collections/notes/records", { token: user.accessToken, body: { title: "n" } });
      expect(res.status, res.text).toBe(201);
      return res.body.id as string;
    };
    const before = await eventCount("notes.create");
    await note();
    expect(await eventCount("notes.create")).toBe(before);
    const hook = await createHook(receiverUrl(receiverName()), ["notes.create"]);
    expect(await eventsOf(await note())).toBe(1);
    const gone = await api(`/v1/admin/webhooks/${hook.id}`, { method: "DELETE", token: SK });
    expect(gone.status).toBe(204);
    expect(await listenersOf(hook.id)).toEqual([]);
    const after = await eventCount("notes.create");
    expect(await eventsOf(await note())).toBe(0);
    expect(await eventCount("notes.create")).toBe(after);
  });

  it("go when the webhook is disabled and come back when it is enabled", async () => {
    const hook = await createHook(receiverUrl(receiverName()), ["lists.update", "lists.delete"]);
    const off = await api(`/v1/admin/webhooks/${hook.id}`, { method: "PATCH", token: SK, body: { enabled: false } });
    expect(off.status, off.text).toBe(200);
    expect(off.body).toMatchObject({ enabled: false, disabledAt: expect.any(String) });
    expect(await listenersOf(hook.id)).toEqual([]);
    const on = await api(`/v1/admin/webhooks/${hook.id}`, { method: "PATCH", token: SK, body: { enabled: true } });
    expect(on.body).toMatchObject({ enabled: true, disabledAt: null });
    expect(await listenersOf(hook.id)).toEqual(["lists.delete", "lists.update"]);
    expect((await auditOf(hook.id)).map((a) => a[1])).toEqual(["webhook.create", "webhook.disable", "webhook.enable"]);
    await api(`/v1/admin/webhooks/${hook.id}`, { method: "DELETE", token: SK });
  });
});

describe("GET /v1/admin/webhooks", () => {
  it("lists webhooks newest first, without secrets, a page at a time", async () => {
    const hooks = [];
    for (let i = 0; i < 3; i++) hooks.push(await createHook(receiverUrl(receiverName()), ["notes.delete"]));
    const first = await api("/v1/admin/webhooks?limit=2", { token: SK });
    expect(first.status).toBe(200);
    expect(first.body.items.map((h: { id: string }) => h.id)).toEqual([hooks[2]!.id, hooks[1]!.id]);
    expect(first.body.items[0].secret).toBeUndefined();
    const next = await api(`/v1/admin/webhooks?limit=2&cursor=${first.body.nextCursor}`, { token: SK });
    expect(next.body.items[0].id).toBe(hooks[0]!.id);
    expectProblem(await api("/v1/admin/webhooks?cursor=garbage", { token: SK }), 400, "validation_failed");
    for (const h of hooks) await api(`/v1/admin/webhooks/${h.id}`, { method: "DELETE", token: SK });
  });
});

describe("DELETE and rotate", () => {
  it("DELETE answers 204, then 404; the webhook's deliveries go with it", async () => {
    const hook = await createHook(receiverUrl(receiverName()), ["notes.create"]);
    const { run } = await makeRun(hook.id, { status: "parked" });
    expect((await api(`/v1/admin/webhooks/${hook.id}`, { method: "DELETE", token: SK })).status).toBe(204);
    expectProblem(await api(`/v1/admin/webhooks/${hook.id}`, { method: "DELETE", token: SK }), 404, "not_found");
    expectProblem(await api(`/v1/admin/webhooks/${hook.id}`, { token: SK }), 404, "not_found");
    expect(await env.DB.prepare("SELECT id FROM event_runs WHERE id = ?").bind(run.id).first()).toBeNull();
    expect((await auditOf(hook.id)).map((a) => a[1])).toEqual(["webhook.create", "webhook.delete"]);
  });

  it("rotate-secret answers a new secret once; the old one moves to previous_secret for 24 hours", async () => {
    const hook = await createHook(receiverUrl(receiverName()), ["notes.create"]);
    const sealed = (await hookRow(hook.id))!.secret;
    const res = await api(`/v1/admin/webhooks/${hook.id}/rotate-secret`, { token: SK, body: {} });
    expect(res.status, res.text).toBe(200);
    expect(res.body.secret).toMatch(/^whsec_/);
    expect(res.body.secret).not.toBe(hook.secret);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const in24h = Date.now() + 24 * 3600_000;
    expect(Math.abs(Date.parse(res.body.previousUntil) - in24h)).toBeLessThan(60_000);
    const row = (await hookRow(hook.id))!;
    expect(row.previous_secret).toBe(sealed);
    expect(row.secret).not.toBe(sealed);
    expect((await auditOf(hook.id)).map((a) => a[1])).toEqual(["webhook.create", "webhook.rotate_secret"]);
    expectProblem(await api("/v1/admin/webhooks/nope/rotate-secret", { token: SK, body: {} }), 404, "not_found");
    await api(`/v1/admin/webhooks/${hook.id}`, { method: "DELETE", token: SK });
  });
});

describe("deliveries", () => {
  it("lists a webhook's deliveries newest first, with status, attempts, last error and next attempt", async () => {
    const hook = await createHook(receiverUrl(receiverName()), ["notes.create", "notes.delete"]);
    const a = await makeRun(hook.id, { status: "done", createdAt: "2026-01-01T00:00:00.000Z" });
    const b = await makeRun(hook.id, {
      event: "notes.delete",
      status: "pending",
      createdAt: "2026-01-02T00:00:00.000Z",
    });
    await env.DB.prepare("UPDATE event_runs SET attempts = 3, last_error = 'HTTP 500', last_status = 500 WHERE id = ?")
      .bind(b.run.id)
      .run();
    const other = await createHook(receiverUrl(receiverName()), ["notes.create"]);
    await makeRun(other.id);
    const res = await api(`/v1/admin/webhooks/${hook.id}/deliveries`, { token: SK });
    expect(res.status, res.text).toBe(200);
    expect(res.body.items).toEqual([
      {
        id: b.run.id,
        event: "notes.delete",
        status: "pending",
        attempts: 3,
        lastError: "HTTP 500",
        lastStatus: 500,
        nextAttemptAt: "2026-01-02T00:00:00.000Z",
        createdAt: "2026-01-02T00:00:00.000Z",
      },
      {
        id: a.run.id,
        event: "notes.create",
        status: "done",
        attempts: 0,
        lastError: null,
        lastStatus: null,
        nextAttemptAt: null,
        createdAt: "2026-01-01T00:00:00.000Z",
      },
    ]);
    const page = await api(`/v1/admin/webhooks/${hook.id}/deliveries?limit=1`, { token: SK });
    expect(page.body.items.map((d: { id: string }) => d.id)).toEqual([b.run.id]);
    const rest = await api(`/v1/admin/webhooks/${hook.id}/deliveries?limit=1&cursor=${page.body.nextCursor}`, {
      token: SK,
    });
    expect(rest.body).toMatchObject({ items: [{ id: a.run.id }], nextCursor: null });
    expectProblem(await api("/v1/admin/webhooks/nope/deliveries", { token: SK }), 404, "not_found");
  });

  /** POST redeliver on the app with a JOBS queue that records what is sent. */
  async function redeliverWithQueue(hookId: string, deliveryId: string) {
    const sent: unknown[] = [];
    const ctx = createExecutionContext();
    const res = await app.fetch(
      new Request(`https://outpost.test/v1/admin/webhooks/${hookId}/deliveries/${deliveryId}/redeliver`, {
        method: "POST",
        headers: { "cf-connecting-ip": freshIp(), "content-type": "application/json", authorization: `Bearer ${SK}` },
        body: "{}",
      }),
      { ...env, JOBS: { send: async (job: unknown) => void sent.push(job) } as unknown as Queue },
      ctx,
    );
    const text = await res.text();
    await waitOnExecutionContext(ctx);
    return { status: res.status, headers: res.headers, text, body: JSON.parse(text), sent };
  }

  it("redeliver puts a delivery back to pending, due now, and sends its Queue job (202)", async () => {
    const hook = await createHook(receiverUrl(receiverName()), ["notes.create"]);
    const { run } = await makeRun(hook.id, { status: "parked", createdAt: "2026-01-01T00:00:00.000Z" });
    await env.DB.prepare("UPDATE event_runs SET attempts = 9, finished_at = created_at WHERE id = ?")
      .bind(run.id)
      .run();
    const res = await redeliverWithQueue(hook.id, run.id);
    expect(res.status, res.text).toBe(202);
    expect(res.body).toEqual({ id: run.id, status: "pending" });
    expect(res.sent).toEqual([{ type: "events.run", id: run.id }]);
    const row = await env.DB.prepare(
      "SELECT status, attempts, next_attempt_at, finished_at FROM event_runs WHERE id = ?",
    )
      .bind(run.id)
      .first<{ status: string; attempts: number; next_attempt_at: string; finished_at: string | null }>();
    expect(row).toMatchObject({ status: "pending", attempts: 9, finished_at: null });
    expect(Math.abs(Date.parse(row!.next_attempt_at) - Date.now())).toBeLessThan(60_000);
    expect((await auditOf(hook.id)).at(-1)).toEqual(["service", "webhook.redeliver", { deliveryId: run.id }]);
  });

  it("redeliver refuses a running delivery, an unknown or foreign one, and a disabled webhook's", async () => {
    const hook = await createHook(receiverUrl(receiverName()), ["notes.create"]);
    const other = await createHook(receiverUrl(receiverName()), ["notes.create"]);
    const running = await makeRun(hook.id, { status: "running" });
    const others = await makeRun(other.id, { status: "parked" });
    const r1 = await redeliverWithQueue(hook.id, running.run.id);
    expectProblem(r1, 409, "conflict");
    expectProblem(await redeliverWithQueue(hook.id, others.run.id), 404, "not_found");
    expectProblem(await redeliverWithQueue(hook.id, "no-such-delivery"), 404, "not_found");
    expectProblem(await redeliverWithQueue("no-such-hook", others.run.id), 404, "not_found");
    await api(`/v1/admin/webhooks/${other.id}`, { method: "PATCH", token: SK, body: { enabled: false } });
    const r2 = await redeliverWithQueue(other.id, others.run.id);
    expectProblem(r2, 409, "conflict");
    expect([r1.sent, r2.sent]).toEqual([[], []]);
  });
});

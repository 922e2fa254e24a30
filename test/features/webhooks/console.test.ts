/**
 * The console's Webhooks pages: the list and create form (the secret shown once, a refused URL shown as
 * an error), a webhook's page with its deliveries, rotating (new secret shown once), disabling and
 * enabling, redelivering, deleting (confirmed); each with its audit row; refused to non-admins.
 */
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signup, type TestUser } from "../../helpers/api";
import { type Browser, signIn, visit } from "../admin/console-helpers";
import { signupAdmin } from "../admin/helpers";
import { createHook, forgetWebhooks, hookRow, listenersOf, makeRun, receiverName, receiverUrl } from "./helpers";

let admin: TestUser;
beforeAll(async () => {
  admin = await signupAdmin();
});

const actions = async (id: string) =>
  (
    await env.DB.prepare("SELECT action FROM audit_log WHERE target = ? ORDER BY id")
      .bind(`webhook:${id}`)
      .all<{ action: string }>()
  ).results.map((r) => r.action);

// Leave no listener behind for the files after this one.
afterAll(forgetWebhooks);

describe("the Webhooks pages", () => {
  it("create a webhook from the form and show its secret once", async () => {
    const { b, csrf } = await signIn(admin);
    const list = await visit(b, "/admin/webhooks");
    expect(list.status).toBe(200);
    expect(list.html).toContain(`href="/admin/webhooks"`); // the navigation entry
    const url = receiverUrl(receiverName());
    const made = await visit(b, "/admin/webhooks", { _csrf: csrf, url, events: "notes.create, notes.delete" });
    expect(made.status, made.html).toBe(200);
    const secret = /<code class="secret">(whsec_[^<]+)<\/code>/.exec(made.html)?.[1];
    expect(secret).toBeDefined();
    const row = await env.DB.prepare("SELECT id FROM webhooks WHERE url = ?").bind(url).first<{ id: string }>();
    expect(await listenersOf(row!.id)).toEqual(["notes.create", "notes.delete"]);
    expect(await actions(row!.id)).toEqual(["webhook.create"]);
    const again = await visit(b, "/admin/webhooks");
    expect(again.html).toContain(url);
    expect(again.html).not.toContain(secret!);
    const one = await visit(b, `/admin/webhooks/${row!.id}`);
    expect(one.html).not.toContain(secret!);
  });

  it("show a refused URL or an unknown event as an error, creating nothing", async () => {
    const { b, csrf } = await signIn(admin);
    const bad = await visit(b, "/admin/webhooks", { _csrf: csrf, url: "http://10.0.0.1/x", events: "notes.create" });
    expect(bad.status).toBe(400);
    expect(bad.html).toContain("private address");
    const unknown = await visit(b, "/admin/webhooks", { _csrf: csrf, url: receiverUrl("x"), events: "nope.create" });
    expect(unknown.status).toBe(400);
    expect(unknown.html).toContain("unknown event");
    const n = await env.DB.prepare("SELECT count(*) AS n FROM webhooks WHERE url IN (?, ?)")
      .bind("http://10.0.0.1/x", receiverUrl("x"))
      .first<{ n: number }>();
    expect(n?.n).toBe(0);
    expect((await visit(b, "/admin/webhooks", { _csrf: "wrong", url: receiverUrl("y"), events: "*" })).status).toBe(
      403,
    );
  });

  it("show a webhook's deliveries; rotate, disable, enable, redeliver and delete it", async () => {
    const hook = await createHook(receiverUrl(receiverName()), ["lists.create"]);
    const { run } = await makeRun(hook.id, { event: "lists.create", status: "parked" });
    await env.DB.prepare("UPDATE event_runs SET attempts = 7, last_error = 'HTTP 502' WHERE id = ?").bind(run.id).run();
    const { b, csrf } = await signIn(admin);
    const base = `/admin/webhooks/${hook.id}`;
    const page = await visit(b, base);
    expect(page.status).toBe(200);
    expect(page.html).toContain(run.id);
    expect(page.html).toContain("HTTP 502");
    expect(page.html).toContain(`${base}/deliveries/${run.id}/redeliver`);

    const rotated = await visit(b, `${base}/rotate`, { _csrf: csrf });
    expect(rotated.status).toBe(200);
    const secret = /<code class="secret">(whsec_[^<]+)<\/code>/.exec(rotated.html)?.[1];
    expect(secret).toBeDefined();
    expect(secret).not.toBe(hook.secret);
    expect((await hookRow(hook.id))!.previous_secret).not.toBeNull();

    const off = await visit(b, `${base}/disable`, { _csrf: csrf });
    expect(off.status).toBe(303);
    expect((await hookRow(hook.id))!.enabled).toBe(0);
    expect(await listenersOf(hook.id)).toEqual([]);
    // A disabled webhook's delivery is not sent again.
    expect((await visit(b, `${base}/deliveries/${run.id}/redeliver`, { _csrf: csrf })).status).toBe(409);
    const on = await visit(b, `${base}/enable`, { _csrf: csrf });
    expect(on.status).toBe(303);
    expect(await listenersOf(hook.id)).toEqual(["lists.create"]);

    const again = await visit(b, `${base}/deliveries/${run.id}/redeliver`, { _csrf: csrf });
    expect(again.status).toBe(303);
    const status = await env.DB.prepare("SELECT status FROM event_runs WHERE id = ?")
      .bind(run.id)
      .first<{ status: string }>();
    expect(status?.status).toBe("pending");

    const ask = await visit(b, `${base}/delete`, { _csrf: csrf });
    expect(ask.html).toContain("Are you sure?");
    expect(await hookRow(hook.id)).not.toBeNull();
    const gone = await visit(b, `${base}/delete`, { _csrf: csrf, confirm: "yes" });
    expect(gone.status).toBe(303);
    expect(await hookRow(hook.id)).toBeNull();
    expect((await visit(b, base)).status).toBe(404);
    expect(await actions(hook.id)).toEqual([
      "webhook.create",
      "webhook.rotate_secret",
      "webhook.disable",
      "webhook.enable",
      "webhook.redeliver",
      "webhook.delete",
    ]);
  });

  it("are refused to anyone not signed in as an admin", async () => {
    const hook = await createHook(receiverUrl(receiverName()), ["lists.create"]);
    const user = await signup();
    const tried = await signIn(user);
    for (const b of [tried.b, { cookies: new Map() } as Browser]) {
      for (const path of ["/admin/webhooks", `/admin/webhooks/${hook.id}`]) {
        const res = await visit(b, path);
        expect(res.status, path).toBe(303);
        expect(res.headers.get("location")).toBe("/admin/login");
      }
      for (const action of ["rotate", "disable", "delete"]) {
        const post = await visit(b, `/admin/webhooks/${hook.id}/${action}`, { _csrf: tried.csrf, confirm: "yes" });
        expect(post.status, action).toBe(403);
      }
    }
    expect((await hookRow(hook.id))!.enabled).toBe(1);
  });
});

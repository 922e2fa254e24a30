/**
 * Every webhooks route refuses a caller without a token, with a broken, forged or expired one (401),
 * a signed-in user who is not an admin (403), and a disabled admin (403 account_disabled).
 */
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, documentedOperations, expectProblem, serviceKey, signup, type TestUser } from "../../helpers/api";
import { expectStrangersRefused, type RouteCall } from "../../helpers/refusals";
import { signupAdmin } from "../admin/helpers";
import { createHook, forgetWebhooks, makeRun, receiverName, receiverUrl } from "./helpers";

let user: TestUser;
let calls: RouteCall[];
beforeAll(async () => {
  user = await signup();
  const hook = await createHook(receiverUrl(receiverName()), ["notes.create"]);
  const { run } = await makeRun(hook.id, { status: "parked" });
  const base = `/v1/admin/webhooks`;
  calls = [
    { method: "POST", path: base, opts: { body: { url: receiverUrl(receiverName()), events: ["notes.create"] } } },
    { method: "GET", path: base },
    { method: "GET", path: `${base}/${hook.id}` },
    { method: "PATCH", path: `${base}/${hook.id}`, opts: { body: { enabled: true } } },
    { method: "DELETE", path: `${base}/${hook.id}` },
    { method: "POST", path: `${base}/${hook.id}/rotate-secret`, opts: { body: {} } },
    { method: "GET", path: `${base}/${hook.id}/deliveries` },
    { method: "POST", path: `${base}/${hook.id}/deliveries/${run.id}/redeliver`, opts: { body: {} } },
  ];
});

// Leave no listener behind for the files after this one.
afterAll(forgetWebhooks);

describe("webhooks routes", () => {
  it("are exactly the documented ones", async () => {
    expect(await documentedOperations("/v1/admin/webhooks")).toEqual([
      "DELETE /v1/admin/webhooks/{id}",
      "GET /v1/admin/webhooks",
      "GET /v1/admin/webhooks/{id}",
      "GET /v1/admin/webhooks/{id}/deliveries",
      "PATCH /v1/admin/webhooks/{id}",
      "POST /v1/admin/webhooks",
      "POST /v1/admin/webhooks/{id}/deliveries/{deliveryId}/redeliver",
      "POST /v1/admin/webhooks/{id}/rotate-secret",
    ]);
  });

  it("refuse no token, a garbage, forged, tampered or expired token (401)", async () => {
    for (const call of calls) await expectStrangersRefused(call, user);
  });

  it("refuse a signed-in user who is not an admin (403), and nothing changes", async () => {
    for (const call of calls) {
      const res = await api(call.path, { ...call.opts, method: call.method, token: user.accessToken });
      expect(res.status, `${call.method} ${call.path}: ${res.text}`).toBe(403);
      expectProblem(res, 403, "forbidden");
    }
    const hooks = await env.DB.prepare("SELECT count(*) AS n FROM webhooks").first<{ n: number }>();
    expect(hooks?.n).toBe(1);
  });

  it("refuse an admin whose account was disabled (403 account_disabled)", async () => {
    await signupAdmin(); // the last active admin cannot be disabled
    const admin = await signupAdmin();
    await env.DB.prepare("UPDATE users SET disabled = 1 WHERE id = ?").bind(admin.id).run();
    for (const call of calls) {
      const res = await api(call.path, { ...call.opts, method: call.method, token: admin.accessToken });
      expectProblem(res, 403, "account_disabled");
    }
  });

  it("answer the service key", async () => {
    const res = await api("/v1/admin/webhooks", { token: serviceKey() });
    expect(res.status).toBe(200);
  });
});

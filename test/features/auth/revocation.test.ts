/**
 * Issue 23.10: a disabled or deleted user's access token stops working on every route within
 * 60 seconds, with no D1 query per request (an isolate reads the revocation list again in the
 * background after 30 s and before answering after 60 s; what it writes itself applies at once).
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { handleScheduled } from "../../../src/scheduled";
import { api, expectProblem, signup } from "../../helpers/api";
import { disable } from "../admin/helpers";

/** A route that checks the token and reads no user row: only the revocation list can refuse it. */
const listFiles = (token: string) => api("/v1/files", { token });

afterEach(() => vi.restoreAllMocks());

describe("revoked access tokens", () => {
  it("refuses a disabled user's access token at once on every route", async () => {
    const user = await signup();
    expect((await listFiles(user.accessToken)).status).toBe(200);
    expect((await disable(user.id)).status).toBe(200);
    expectProblem(await listFiles(user.accessToken), 403, "account_disabled");
    const records = await api("/v1/collections/notes/records", { token: user.accessToken });
    expectProblem(records, 403, "account_disabled");
  });

  it("refuses a deleted user's access token", async () => {
    const user = await signup();
    expect((await api("/v1/me", { method: "DELETE", token: user.accessToken })).status).toBe(204);
    expectProblem(await listFiles(user.accessToken), 401, "unauthorized");
  });

  it("lets a token issued after the user was enabled again through", async () => {
    const user = await signup();
    expect((await disable(user.id)).status).toBe(200);
    expect((await disable(user.id, false)).status).toBe(200);
    // Tokens carry whole seconds: the new one must be issued after the revocation's second.
    await new Promise((r) => setTimeout(r, 1100));
    const login = await api("/v1/auth/login", { body: { email: user.email, password: user.password } });
    expect(login.status).toBe(200);
    const fresh = login.body.session.accessToken;
    expect((await listFiles(fresh)).status).toBe(200);
    // The old token stays refused, now as an ended session; a socket ticket works for the new one.
    expectProblem(await listFiles(user.accessToken), 401, "unauthorized");
    expect((await api("/v1/auth/socket-ticket", { token: fresh, body: {} })).status).toBe(201);
  });

  it("reaches an isolate that did not write it within 60 s", async () => {
    const user = await signup();
    expect((await listFiles(user.accessToken)).status).toBe(200);
    // Another isolate's write: straight into D1, which this isolate's copy does not know of yet.
    const at = Math.floor(Date.now() / 1000);
    await env.DB.prepare("INSERT INTO token_revocations (user_id, revoked_at, reason) VALUES (?, ?, 'ended')")
      .bind(user.id, at)
      .run();
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, "now").mockImplementation(() => realNow() + 61_000);
    expectProblem(await listFiles(user.accessToken), 401, "unauthorized");
  });

  it("is pruned by the cron once no access token it covers can still be valid", async () => {
    const user = await signup();
    const old = Math.floor(Date.now() / 1000) - 16 * 60;
    await env.DB.prepare("INSERT INTO token_revocations (user_id, revoked_at, reason) VALUES (?, ?, 'ended')")
      .bind(user.id, old)
      .run();
    await handleScheduled(
      { scheduledTime: Date.now(), cron: "*/15 * * * *", noRetry() {} } as ScheduledController,
      env,
    );
    const row = await env.DB.prepare("SELECT 1 FROM token_revocations WHERE user_id = ?").bind(user.id).first();
    expect(row).toBeNull();
  });
});

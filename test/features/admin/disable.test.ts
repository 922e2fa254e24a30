/**
 * Issue 17.1: roles and disabling. A disabled account's login, refresh and provider sign-in answer
 * 403 `account_disabled`; its sessions end (socket tickets refused, chat sockets closed with 4401);
 * enabling it again lets it sign in.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { handleScheduled } from "../../../src/scheduled";
import { api, expectProblem, signup } from "../../helpers/api";
import { providerIdToken } from "../../helpers/tokens";
import { connect, createGroup } from "../chat/helpers";
import { disable, signupAdmin } from "./helpers";

describe("users have a role and a disabled flag", () => {
  it("a new user is a `user`, not disabled; an admin reads as `admin` in /v1/me", async () => {
    const email = `shape.${Date.now()}@example.com`;
    const res = await api("/v1/auth/signup", { body: { email, password: "correct horse battery" } });
    expect(res.status).toBe(201);
    expect(res.body.user).toMatchObject({ role: "user", disabled: false });
    const admin = await signupAdmin();
    expect((await api("/v1/me", { token: admin.accessToken })).body).toMatchObject({ role: "admin", disabled: false });
  });
});

describe("a disabled account", () => {
  // A wrong password still gets 401.
  it("gets 403 account_disabled from login, and can log in again once enabled", async () => {
    const user = await signup();
    const res = await disable(user.id);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ id: user.id, disabled: true });
    expectProblem(
      await api("/v1/auth/login", { body: { email: user.email, password: user.password } }),
      403,
      "account_disabled",
    );
    // Without the password nobody learns that the account exists, let alone that it is disabled.
    expectProblem(
      await api("/v1/auth/login", { body: { email: user.email, password: "not the password" } }),
      401,
      "invalid_credentials",
    );
    expect((await disable(user.id, false)).status).toBe(200);
    expect((await api("/v1/auth/login", { body: { email: user.email, password: user.password } })).status).toBe(200);
  });

  // Ended: no socket ticket, and not counted as live.
  it("gets 403 account_disabled from refresh, and its sessions have ended", async () => {
    const user = await signup();
    expect((await disable(user.id)).status).toBe(200);
    expectProblem(
      await api("/v1/auth/refresh", { body: { refreshToken: user.refreshToken } }),
      403,
      "account_disabled",
    );
    // Again: the session is kept (ended) so the answer stays the same, not a bare 401.
    expectProblem(
      await api("/v1/auth/refresh", { body: { refreshToken: user.refreshToken } }),
      403,
      "account_disabled",
    );
    // The access token itself is refused as well (issue 23.10), with the account_disabled code.
    expectProblem(await api("/v1/auth/socket-ticket", { token: user.accessToken, body: {} }), 403, "account_disabled");
    const detail = await api(`/v1/admin/users/${user.id}`, { token: env.SERVICE_KEY });
    expect(detail.body.counts.sessions).toBe(0);
    // Enabling drops the ended sessions: their refresh tokens no longer work at all.
    expect((await disable(user.id, false)).status).toBe(200);
    expectProblem(await api("/v1/auth/refresh", { body: { refreshToken: user.refreshToken } }), 401, "session_revoked");
  });

  // The cleanup still drops other users' expired sessions.
  it("keeps that answer after the cron's cleanup of expired sessions", async () => {
    const [disabled, other] = [await signup(), await signup()];
    expect((await disable(disabled.id)).status).toBe(200);
    await env.DB.prepare("UPDATE sessions SET expires_at = '2000-01-01T00:00:00.000Z' WHERE user_id = ?")
      .bind(other.id)
      .run();
    await handleScheduled(
      { scheduledTime: Date.now(), cron: "*/15 * * * *", noRetry() {} } as ScheduledController,
      env,
    );
    expectProblem(
      await api("/v1/auth/refresh", { body: { refreshToken: disabled.refreshToken } }),
      403,
      "account_disabled",
    );
    expect(await env.DB.prepare("SELECT count(*) AS n FROM sessions WHERE user_id = ?").bind(other.id).first("n")).toBe(
      0,
    );
  });

  it("gets 403 account_disabled from a provider sign-in (idtoken) of a linked identity", async () => {
    const sub = `disabled-${Date.now()}`;
    const sign = async () =>
      api("/v1/auth/idtoken", {
        body: {
          provider: "google",
          idToken: await providerIdToken("google", {
            sub,
            email: `${sub}@example.com`,
            email_verified: true,
            aud: "web-client-id",
          }),
        },
      });
    const first = await sign();
    expect(first.status, first.text).toBe(200);
    expect((await disable(first.body.user.id)).status).toBe(200);
    expectProblem(await sign(), 403, "account_disabled");
  });

  it("has its chat sockets closed with 4401 when disabled", async () => {
    const [owner, member] = [await signup(), await signup()];
    const room = await createGroup(owner, [member]);
    const sock = await connect(member, room.id);
    expect((await disable(member.id)).status).toBe(200);
    expect((await sock.socket.closedWithin()).code).toBe(4401);
  });
});

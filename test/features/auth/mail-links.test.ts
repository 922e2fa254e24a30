/**
 * Issue 23.8: links in mails come only from PUBLIC_URL / APP_LINK_BASE. A production Worker with
 * neither answers `misconfigured`, never a link built from the request's Host.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../../src/router";
import { expectProblem, signup } from "../../helpers/api";

/** Calls the app as a production Worker (or with other settings), from a forged Host. */
async function callWith(vars: Partial<Record<keyof Env, string>>, path: string, init: RequestInit = {}) {
  const ctx = createExecutionContext();
  const headers = new Headers(init.headers);
  headers.set("content-type", "application/json");
  headers.set("cf-connecting-ip", `10.77.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`);
  const res = await app.fetch(
    new Request(`https://evil.example${path}`, { ...init, headers }),
    { ...env, ...vars },
    ctx,
  );
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : null };
}

describe("mail links", () => {
  it("a production Worker without PUBLIC_URL or APP_LINK_BASE refuses to build one", async () => {
    const prod = { ENVIRONMENT: "production", PUBLIC_URL: "", APP_LINK_BASE: "" };
    const reset = await callWith(prod, "/v1/auth/password-reset", {
      method: "POST",
      body: JSON.stringify({ email: "someone@example.com" }),
    });
    expectProblem(reset, 500, "misconfigured");
    const user = await signup();
    const verify = await callWith(prod, "/v1/auth/verify-email", {
      method: "POST",
      body: "{}",
      headers: { authorization: `Bearer ${user.accessToken}` },
    });
    expectProblem(verify, 500, "misconfigured");
    const tokens = await env.DB.prepare("SELECT count(*) AS n FROM verification_tokens WHERE user_id = ?")
      .bind(user.id)
      .first<{ n: number }>();
    expect(tokens?.n, "nothing written").toBe(0);
  });

  it("uses APP_LINK_BASE, then PUBLIC_URL, never the request's Host", async () => {
    const user = await signup();
    const send = (vars: Partial<Record<keyof Env, string>>) =>
      callWith(vars, "/v1/auth/verify-email", {
        method: "POST",
        body: "{}",
        headers: { authorization: `Bearer ${user.accessToken}` },
      });
    const lastMail = async () =>
      (
        await env.DB.prepare('SELECT text FROM dev_outbox WHERE "to" = ? ORDER BY created_at DESC, id DESC LIMIT 1')
          .bind(user.email)
          .first<{ text: string }>()
      )?.text ?? "";
    expect((await send({ APP_LINK_BASE: "myapp://auth", PUBLIC_URL: "https://api.example" })).status).toBe(202);
    expect(await lastMail()).toContain("myapp://auth/verify-email?token=");
    expect((await send({ APP_LINK_BASE: "", PUBLIC_URL: "https://api.example" })).status).toBe(202);
    const mail = await lastMail();
    expect(mail).toContain("https://api.example/verify-email?token=");
    expect(mail).not.toContain("evil.example");
  });
});

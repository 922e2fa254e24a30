/**
 * The development outbox (`GET /v1/dev/outbox`) holds every reset and verification code, so it is
 * served only when ENVIRONMENT is `development` or `test`; anywhere else without a mail provider,
 * mail fails closed (logged) instead of landing somewhere readable.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getConfig } from "../../../src/config";
import { createDb } from "../../../src/db";
import { createMailer } from "../../../src/features/mail/mailer";
import { app } from "../../../src/router";
import { freshIp, signup, uniqueEmail } from "../../helpers/api";

/** Calls the app as deployed with `ENVIRONMENT` set to `environment` (no mail provider). */
async function callAs(environment: string, path: string, body?: unknown) {
  const ctx = createExecutionContext();
  const res = await app.fetch(
    new Request(`https://outpost.test${path}`, {
      method: body === undefined ? "GET" : "POST",
      headers: { "cf-connecting-ip": freshIp(), ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }),
    { ...env, ENVIRONMENT: environment, MAIL_PROVIDER_URL: "" },
    ctx,
  );
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return { status: res.status, text };
}

const outboxRowsTo = async (to: string) =>
  (await env.DB.prepare('SELECT count(*) AS n FROM dev_outbox WHERE "to" = ?').bind(to).first<{ n: number }>())?.n;

describe("development outbox", () => {
  it("is served for ENVIRONMENT development and test only", async () => {
    expect((await callAs("test", "/v1/dev/outbox")).status).toBe(200);
    expect((await callAs("development", "/v1/dev/outbox")).status).toBe(200);
    for (const environment of ["staging", "production", "Production", "prod", "preview", ""]) {
      expect((await callAs(environment, "/v1/dev/outbox")).status, `ENVIRONMENT=${JSON.stringify(environment)}`).toBe(
        404,
      );
    }
  });

  it("with a mail provider set, it is not served even in development", async () => {
    const ctx = createExecutionContext();
    const res = await app.fetch(
      new Request("https://outpost.test/v1/dev/outbox"),
      { ...env, ENVIRONMENT: "development", MAIL_PROVIDER_URL: `${env.STANDIN_URL}/mail/send` },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(404);
  });

  it("on staging without a provider, mail fails closed with a logged error and lands nowhere readable", async () => {
    const cfg = getConfig({ ...env, ENVIRONMENT: "staging", MAIL_PROVIDER_URL: "" });
    const to = uniqueEmail("staging");
    await expect(
      createMailer(cfg, createDb(env.DB)).send({ to, subject: "s", text: "code: 123" }),
    ).rejects.toMatchObject({ code: "misconfigured" });
    expect(await outboxRowsTo(to)).toBe(0);
    // Through the app: password reset still answers 202 (no enumeration), and the code is stored nowhere.
    const u = await signup();
    expect((await callAs("staging", "/v1/auth/password-reset", { email: u.email })).status).toBe(202);
    expect(await outboxRowsTo(u.email)).toBe(0);
    // In development the same mail lands in the outbox.
    const dev = getConfig({ ...env, ENVIRONMENT: "development", MAIL_PROVIDER_URL: "" });
    await createMailer(dev, createDb(env.DB)).send({ to, subject: "s", text: "code: 123" });
    expect(await outboxRowsTo(to)).toBe(1);
  });
});

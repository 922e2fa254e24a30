import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getConfig } from "../../../src/config";
import { createDb } from "../../../src/db";
import { AppError } from "../../../src/errors";
import { createMailer } from "../../../src/features/mail/mailer";
import { standinRequests, uniqueEmail } from "../../helpers/api";
import { MAIL_API_KEY } from "../../standins/mail";

const base = getConfig(env);
const db = createDb(env.DB);

describe("mailer", () => {
  it("sends through the configured HTTP provider with its API key", async () => {
    const to = uniqueEmail("mail");
    const cfg = {
      ...base,
      mail: {
        providerUrl: `${env.STANDIN_URL}/mail/send`,
        apiKey: MAIL_API_KEY,
        from: "Outpost <no-reply@outpost.test>",
      },
    };
    await createMailer(cfg, db).send({ to, subject: "Hello", text: "Your code: 123" });
    const sent = (await standinRequests("/mail/send")).filter((r) => JSON.parse(r.body).to === to);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.headers.authorization).toBe(`Bearer ${MAIL_API_KEY}`);
    expect(sent[0]!.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(sent[0]!.body)).toEqual({
      from: "Outpost <no-reply@outpost.test>",
      to,
      subject: "Hello",
      text: "Your code: 123",
    });
  });

  it("a provider that refuses (bad key) is an error, not a silent success", async () => {
    const cfg = {
      ...base,
      mail: { providerUrl: `${env.STANDIN_URL}/mail/send`, apiKey: "wrong", from: "x@outpost.test" },
    };
    await expect(createMailer(cfg, db).send({ to: uniqueEmail(), subject: "s", text: "t" })).rejects.toMatchObject({
      code: "unavailable",
    });
  });

  it("in production without a provider, sending fails closed", async () => {
    const cfg = {
      ...base,
      environment: "production",
      isProduction: true,
      mail: { providerUrl: null, apiKey: null, from: "x@outpost.test" },
    };
    await expect(createMailer(cfg, db).send({ to: uniqueEmail(), subject: "s", text: "t" })).rejects.toBeInstanceOf(
      AppError,
    );
  });
});

describe("configuration", () => {
  it("a missing or short secret fails closed with misconfigured, never a default key", () => {
    expect(() => getConfig({ ...env, JWT_SECRET: "" })).toThrow(AppError);
    expect(() => getConfig({ ...env, JWT_SECRET: "short" })).toThrow(/JWT_SECRET/);
    expect(() => getConfig({ ...env, SERVICE_KEY: undefined as unknown as string })).toThrow(/SERVICE_KEY/);
  });
});

/**
 * Which URLs a webhook may call (SSRF): in production only https: and never a literal non-public
 * address, whatever its spelling; in test the stand-ins' loopback is allowed but private ranges stay
 * refused; never credentials.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { webhookUrlProblem } from "../../../src/features/webhooks/url";
import { app } from "../../../src/router";
import { api, expectProblem, freshIp, serviceKey } from "../../helpers/api";
import { receiverName, receiverUrl } from "./helpers";

/** POST /v1/admin/webhooks as the service key, on the app as deployed with `ENVIRONMENT` = `environment`. */
async function createAs(environment: string, url: string) {
  const ctx = createExecutionContext();
  const res = await app.fetch(
    new Request("https://outpost.test/v1/admin/webhooks", {
      method: "POST",
      headers: {
        "cf-connecting-ip": freshIp(),
        "content-type": "application/json",
        authorization: `Bearer ${serviceKey()}`,
      },
      body: JSON.stringify({ url, events: ["notes.create"] }),
    }),
    { ...env, ENVIRONMENT: environment },
    ctx,
  );
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return { status: res.status, headers: res.headers, text, body: JSON.parse(text) };
}

const expectUrlRefused = (res: Awaited<ReturnType<typeof createAs>>, url: string) => {
  expect(res.status, `${url}: ${res.text}`).toBe(400);
  expect(expectProblem(res, 400, "validation_failed").errors?.map((e) => e.path)).toEqual(["url"]);
};

describe("in production", () => {
  const refused = [
    "http://10.0.0.1/hook",
    "http://[::1]/hook",
    "http://169.254.169.254/latest/meta-data/",
    "https://127.0.0.1/hook",
    "https://2130706433/hook",
    "https://0x7f.1/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:169.254.169.254]/hook",
    "https://192.168.1.10/hook",
    "https://172.16.5.4/hook",
    "https://100.64.0.1/hook",
    "https://0.0.0.0/hook",
    "https://[::]/hook",
    "https://[fd00::1]/hook",
    "https://[fe80::1]/hook",
    "https://localhost/hook",
    "https://api.localhost/hook",
    "https://224.0.0.1/hook",
    "http://example.com/hook",
    "https://user:pass@example.com/hook",
    "ftp://example.com/hook",
  ];
  it.each(refused)("refuses %s (400 on url)", async (url) => {
    expectUrlRefused(await createAs("production", url), url);
  });

  it("accepts a public https: URL", async () => {
    const res = await createAs("production", "https://hooks.example.com/outpost");
    expect(res.status, res.text).toBe(201);
    await api(`/v1/admin/webhooks/${res.body.id}`, { method: "DELETE", token: serviceKey() });
  });
});

describe("in test", () => {
  it("accepts http://127.0.0.1:<port> and http://localhost:<port> (the stand-ins)", async () => {
    for (const url of [receiverUrl(receiverName()), "http://localhost:9/hook"]) {
      const res = await createAs("test", url);
      expect(res.status, `${url}: ${res.text}`).toBe(201);
      await api(`/v1/admin/webhooks/${res.body.id}`, { method: "DELETE", token: serviceKey() });
    }
  });

  it("still refuses private and link-local addresses, and credentials", async () => {
    for (const url of [
      "http://10.0.0.1/hook",
      "http://169.254.169.254/",
      "http://[fe80::1]/",
      "http://192.168.0.1/",
      `http://user:pass@127.0.0.1:9/hook`,
    ])
      expectUrlRefused(await createAs("test", url), url);
  });
});

describe("webhookUrlProblem", () => {
  it("judges the address the URL parser makes of every spelling", () => {
    const no = (url: string) => expect(webhookUrlProblem(url, "production"), url).not.toBeNull();
    const yes = (url: string) => expect(webhookUrlProblem(url, "production"), url).toBeNull();
    for (const url of [
      "https://0177.0.0.1/",
      "https://127.1/",
      "https://[0:0:0:0:0:ffff:7f00:1]/",
      "https://[::ffff:a00:1]/",
      "https://[::10.0.0.1]/",
      "https://[64:ff9b::a9fe:a9fe]/",
      "https://[fc00::]/",
      "https://[ff02::1]/",
      "https://255.255.255.255/",
      "https://198.18.0.1/",
      "https://LOCALHOST./",
      "not a url",
    ])
      no(url);
    for (const url of [
      "https://8.8.8.8/",
      "https://[2606:4700:4700::1111]/",
      "https://[::ffff:8.8.8.8]/",
      "https://a.b/",
    ])
      yes(url);
  });
});

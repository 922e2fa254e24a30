import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { cors } from "hono/cors";
import { secureHeaders } from "hono/secure-headers";
import { describe, expect, it } from "vitest";
import { EXPOSED_HEADERS, withHeaders } from "../../src/middleware/response-headers";
import { api, expectProblem, fetchWithEnv } from "../helpers/api";

/** The API's answer to a request, under an env with these overrides. */
const fetchWith = (path: string, init: RequestInit, overrides: Partial<Env>) =>
  fetchWithEnv(new Request(`https://outpost.test${path}`, init), overrides);

/** What hono's own cors + secureHeaders put on an answer, with the API's settings. */
async function honoHeaders(origin: string | string[], requestOrigin: string, html = false): Promise<Headers> {
  const reference = new Hono()
    .use(cors({ origin, exposeHeaders: [...EXPOSED_HEADERS] }))
    .use(secureHeaders({ crossOriginResourcePolicy: "cross-origin" }))
    .get("/", (c) => (html ? c.html("<p>ok</p>") : c.json({ ok: true })));
  return (await reference.request("/", { headers: { origin: requestOrigin } })).headers;
}

/** secureHeaders' defaults that only govern documents: HTML answers carry them, JSON answers do not. */
const DOCUMENT_ONLY = [
  "cross-origin-opener-policy",
  "origin-agent-cluster",
  "referrer-policy",
  "x-dns-prefetch-control",
  "x-download-options",
  "x-permitted-cross-domain-policies",
  "x-xss-protection",
];

/** The headers of `h` but the ones every answer has for its own reasons (and, for JSON, the document-only ones). */
const comparable = (h: Headers, json = true) =>
  [...h.entries()]
    .filter(([k]) => !["content-type", "content-length", "x-request-id", "outpost-bookmark"].includes(k))
    .filter(([k]) => !json || !DOCUMENT_ONLY.includes(k))
    .sort();

describe("system", () => {
  it("GET /v1/health answers ok with the version, a request id and secure headers", async () => {
    const res = await api("/v1/health");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: "ok", version: expect.any(String) });
    expect(res.headers.get("x-request-id")).toMatch(/.+/);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("echoes a valid incoming X-Request-Id, and makes its own otherwise", async () => {
    const res = await api("/v1/health", { headers: { "x-request-id": "abc-123" } });
    expect(res.headers.get("x-request-id")).toBe("abc-123");
    const bare = await api("/v1/health");
    expect(bare.headers.get("x-request-id")).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });

  it("a problem's instance is the server's own id, whatever the client sent (issue 23.4)", async () => {
    const res = await api("/v1/no-such-route", { headers: { "x-request-id": "abc-123" } });
    expect(res.headers.get("x-request-id")).toBe("abc-123");
    expect(res.body.instance).toMatch(/^urn:request:[0-9a-f-]{36}$/);
  });

  it("answers unknown routes with a problem+json 404", async () => {
    const res = await api("/v1/nope");
    expectProblem(res, 404, "not_found");
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  // The API sets these in one pass (src/middleware/response-headers.ts) instead of running
  // hono/cors and hono/secure-headers on every request: the same headers, or this fails.
  it("sets exactly the CORS and security headers hono's cors and secureHeaders would set", async () => {
    const any = await fetchWith("/v1/health", { headers: { origin: "https://app.example" } }, { CORS_ORIGINS: "*" });
    expect(comparable(any.headers)).toEqual(comparable(await honoHeaders("*", "https://app.example")));
    expect(any.headers.get("access-control-allow-origin")).toBe("*");
    expect(any.headers.get("strict-transport-security")).toMatch(/max-age=/);
    expect(any.headers.get("x-content-type-options")).toBe("nosniff");
    expect(any.headers.get("referrer-policy")).toBeNull();

    const listed = ["https://app.example", "https://admin.example"];
    const overrides = { CORS_ORIGINS: listed.join(",") };
    for (const origin of ["https://admin.example", "https://evil.example"]) {
      const res = await fetchWith("/v1/health", { headers: { origin } }, overrides);
      expect(comparable(res.headers)).toEqual(comparable(await honoHeaders(listed, origin)));
    }
    const evil = await fetchWith("/v1/health", { headers: { origin: "https://evil.example" } }, overrides);
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
    expect(evil.headers.get("vary")).toBe("Origin");
    // Error answers carry them too.
    const missing = await fetchWith("/v1/nope", { headers: { origin: "https://app.example" } }, overrides);
    expect(missing.status).toBe(404);
    expect(missing.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(missing.headers.get("x-frame-options")).toBe("SAMEORIGIN");
  });

  it("gives HTML answers every secureHeaders default", async () => {
    const origin = "https://app.example";
    const page = await fetchWith("/docs", { headers: { origin } }, { CORS_ORIGINS: "*" });
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(comparable(page.headers, false)).toEqual(comparable(await honoHeaders("*", origin, true), false));
    expect(page.headers.get("referrer-policy")).toBe("no-referrer");
  });

  it("puts no CORS headers on an answer to a request without an Origin, and says it varies by Origin", async () => {
    for (const CORS_ORIGINS of ["*", "https://app.example"]) {
      const res = await fetchWith("/v1/health", {}, { CORS_ORIGINS });
      expect(res.status).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(res.headers.get("access-control-expose-headers")).toBeNull();
      expect(res.headers.get("vary")).toBe("Origin");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    }
  });

  // A Durable Object's answer (from `stub.fetch`) has immutable headers: it gets a copy that has them.
  it("sets the headers on an answer whose headers are immutable by copying it, and in place otherwise", async () => {
    const stub = env.CHAT_ROOM.get(env.CHAT_ROOM.idFromName("immutable-headers"));
    const refused = await stub.fetch(new Request("https://chat-room.internal/ws"));
    expect(refused.status).toBe(400);
    expect(() => refused.headers.set("x-probe", "1")).toThrow();
    const set = (h: Headers) => h.set("X-Request-Id", "req-1");
    const copied = withHeaders(refused, set);
    expect(copied).not.toBe(refused);
    expect(copied.status).toBe(400);
    expect(copied.headers.get("x-request-id")).toBe("req-1");
    const own = new Response("ok");
    expect(withHeaders(own, set)).toBe(own);
    expect(own.headers.get("x-request-id")).toBe("req-1");
  });

  it("answers CORS preflights", async () => {
    const res = await api("/v1/auth/login", {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST" },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("rejects malformed JSON with validation_failed, not a 500", async () => {
    const res = await api("/v1/auth/login", {
      raw: "{not json",
      headers: { "content-type": "application/json" },
      method: "POST",
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
  });

  it("rejects JSON bodies over 1 MiB with 413", async () => {
    const res = await api("/v1/auth/login", {
      raw: JSON.stringify({ email: "a@b.co", password: "x".repeat(1_100_000) }),
      headers: { "content-type": "application/json" },
      method: "POST",
    });
    expectProblem(res, 413, "payload_too_large");
  });

  it("serves an OpenAPI 3.1 document and the reference page", async () => {
    const doc = await api("/v1/openapi.json");
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe("3.1.0");
    expect(Object.keys(doc.body.paths)).toContain("/v1/auth/signup");
    const page = await api("/docs");
    expect(page.status).toBe(200);
    expect(page.text).toContain("/v1/openapi.json");
  });

  it("serves the reference page's script itself, so /docs works without internet", async () => {
    const page = await api("/docs");
    const scripts = [...page.text.matchAll(/<script[^>]*\ssrc="([^"]+)"/g)].map((m) => m[1]);
    expect(scripts).toEqual(["/docs/scalar.js"]);
    expect(page.text).not.toMatch(/https?:\/\/(cdn|fonts)\./);
    const asset = await env.ASSETS.fetch("https://outpost.test/docs/scalar.js");
    expect(asset.status).toBe(200);
    expect(asset.headers.get("content-type")).toContain("javascript");
    expect(await asset.text()).toContain("createApiReference");
  });
});

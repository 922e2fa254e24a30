/** Idempotency-Key on POST routes outside collections: auth actions and streaming file uploads. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { b64url, sha256 } from "../../src/lib/crypto";
import { api, expectProblem, signup } from "../helpers/api";
import { pngBytes, uploadRaw } from "./files/helpers";

describe("Idempotency-Key", () => {
  it("a retried verify-email returns the first 202 and sends one mail", async () => {
    const u = await signup();
    const headers = { "idempotency-key": "verify-1" };
    const first = await api("/v1/auth/verify-email", { token: u.accessToken, body: {}, headers });
    const again = await api("/v1/auth/verify-email", { token: u.accessToken, body: {}, headers });
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    const outbox = await api<{ items: { to: string; subject: string }[] }>("/v1/dev/outbox");
    // Verification mails only (the welcome mail of the example app's after hook comes on its own).
    expect(outbox.body.items.filter((m) => m.to === u.email && m.subject.endsWith("confirm your email"))).toHaveLength(
      1,
    );
  });

  it("a retried file upload returns the first file and stores one", async () => {
    const u = await signup();
    const bytes = pngBytes(4096);
    const headers = { "idempotency-key": "upload-1" };
    const first = await uploadRaw(u.accessToken, bytes, { name: "a.png", headers });
    const again = await uploadRaw(u.accessToken, bytes, { name: "a.png", headers });
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    const list = await api("/v1/files", { token: u.accessToken });
    expect(list.body.items).toHaveLength(1);
  });

  it("the same key on a different upload (other name or length) is a 409 conflict", async () => {
    const u = await signup();
    const headers = { "idempotency-key": "upload-2" };
    expect((await uploadRaw(u.accessToken, pngBytes(1000), { name: "a.png", headers })).status).toBe(201);
    expectProblem(await uploadRaw(u.accessToken, pngBytes(2000), { name: "a.png", headers }), 409, "conflict");
    expectProblem(await uploadRaw(u.accessToken, pngBytes(1000), { name: "b.png", headers }), 409, "conflict");
  });

  it("a handler's refusal (409 email_taken) is kept and replayed; an invalid body is not kept", async () => {
    const taken = await signup();
    const guest = await api("/v1/auth/anonymous", { body: {} });
    const token = guest.body.session.accessToken;
    const headers = { "idempotency-key": "link-1" };
    expectProblem(
      await api("/v1/auth/link", { token, headers, body: { email: "not-an-email", password: "long enough" } }),
      400,
      "validation_failed",
    );
    const first = await api("/v1/auth/link", { token, headers, body: { email: taken.email, password: "long enough" } });
    expectProblem(first, 409, "email_taken");
    const again = await api("/v1/auth/link", { token, headers, body: { email: taken.email, password: "long enough" } });
    expectProblem(again, 409, "email_taken");
    expect(again.headers.get("idempotent-replayed")).toBe("true");
  });

  it("a JSON body sent as text/plain is 415, and an array body is 400, on every JSON route", async () => {
    const u = await signup();
    const asText = await api("/v1/me", {
      method: "PATCH",
      token: u.accessToken,
      raw: JSON.stringify({ name: "x" }),
      headers: { "content-type": "text/plain" },
    });
    expectProblem(asText, 415, "unsupported_media_type");
    expectProblem(await api("/v1/me", { method: "PATCH", token: u.accessToken, body: [] }), 400, "validation_failed");
    expect((await api("/v1/me", { token: u.accessToken })).body.name).toBeNull();
    // An action route still takes an empty body without a content type.
    expect((await api("/v1/auth/logout", { method: "POST", token: u.accessToken })).status).toBe(204);
  });

  it("keys are per user: another user's identical key runs their own request", async () => {
    const a = await signup();
    const b = await signup();
    const headers = { "idempotency-key": "same-key" };
    const fa = await uploadRaw(a.accessToken, pngBytes(1000), { name: "x.png", headers });
    const fb = await uploadRaw(b.accessToken, pngBytes(1000), { name: "x.png", headers });
    expect(fb.status).toBe(201);
    expect(fb.body.id).not.toBe(fa.body.id);
    expect(fb.body.ownerId).toBe(b.id);
  });

  // Keyed, not a plain SHA-256 of route and body.
  it("the stored fingerprint of a body with a password is keyed; a retry still replays", async () => {
    const guest = await api("/v1/auth/anonymous", { body: {} });
    const token = guest.body.session.accessToken;
    const body = { email: `fp.${Date.now()}@example.com`, password: "a guessable password" };
    const headers = { "idempotency-key": "link-fingerprint" };
    const first = await api("/v1/auth/link", { token, headers, body });
    expect(first.status, first.text).toBe(200);
    const row = await env.DB.prepare("SELECT request_hash FROM idempotency_keys WHERE scope = ? AND key = ?")
      .bind(`user:${guest.body.user.id}`, "link-fingerprint")
      .first<{ request_hash: string }>();
    expect(row?.request_hash).toEqual(expect.any(String));
    const plain = b64url(await sha256(`POST /v1/auth/link\n${JSON.stringify(body)}`));
    expect(row!.request_hash).not.toBe(plain);
    expect(row!.request_hash).not.toContain(body.password);
    const again = await api("/v1/auth/link", { token, headers, body });
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body).toEqual(first.body);
    // A different password under the same key is still recognised as a different request.
    expectProblem(
      await api("/v1/auth/link", { token, headers, body: { ...body, password: "another password" } }),
      409,
      "conflict",
    );
  });
});

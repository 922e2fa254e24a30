import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createDb } from "../../../src/db";
import { idempotencyKeys } from "../../../src/db/schema";
import { b64url, hmac, purposeKey } from "../../../src/lib/crypto";
import { idempotencyCleanup } from "../../../src/middleware/idempotency";
import { api, expectProblem, serviceKey, signup } from "../../helpers/api";
import { base, list } from "./helpers";

const notes = `${base("notes")}/records`;
const post = (token: string, key: string, body: unknown = { title: "once" }) =>
  api(notes, { token, body, headers: { "idempotency-key": key } });

describe("Idempotency-Key on POST", () => {
  it("a retry returns the first response and writes nothing", async () => {
    const user = await signup();
    const first = await post(user.accessToken, "k-1");
    expect(first.status).toBe(201);
    const again = await post(user.accessToken, "k-1");
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get("etag")).toBe(first.headers.get("etag"));
    expect(again.headers.get("location")).toBe(first.headers.get("location"));
    expect(again.headers.get("content-type")).toContain("application/json");
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.headers.get("x-request-id")).toBeTruthy();
    const items = (await list("notes", user.accessToken)).body.items;
    expect(items).toEqual([first.body]);
    const changes = await api(`${base("notes")}/changes`, { token: user.accessToken });
    expect(changes.body.items).toHaveLength(1);
  });

  it("the same key with a different body is a 409 conflict naming the header", async () => {
    const user = await signup();
    expect((await post(user.accessToken, "k-2", { title: "a" })).status).toBe(201);
    const p = expectProblem(await post(user.accessToken, "k-2", { title: "b" }), 409, "conflict");
    expect(p.errors).toEqual([{ path: "Idempotency-Key", message: expect.any(String) }]);
    const p2 = expectProblem(
      await api(`${base("posts")}/records`, {
        token: user.accessToken,
        body: { title: "a" },
        headers: { "idempotency-key": "k-2" },
      }),
      409,
      "conflict",
    );
    expect(p2.errors?.[0]?.path).toBe("Idempotency-Key");
    expect((await list("notes", user.accessToken)).body.items).toHaveLength(1);
  });

  it("keys are per caller: another user's identical key is independent", async () => {
    const a = await signup();
    const b = await signup();
    const ra = await post(a.accessToken, "shared-key");
    const rb = await post(b.accessToken, "shared-key");
    expect(rb.status).toBe(201);
    expect(rb.body.id).not.toBe(ra.body.id);
    expect(rb.body.ownerId).toBe(b.id);
    const rs = await post(serviceKey(), "shared-key");
    expect(rs.body.ownerId).toBeNull();
  });

  it("concurrent duplicates: one request runs, the others replay it or get 409 while it is in flight", async () => {
    const user = await signup();
    const results = await Promise.all(Array.from({ length: 6 }, () => post(user.accessToken, "k-race")));
    const created = results.filter((r) => r.status === 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    for (const r of created) expect(r.body).toEqual(created[0]!.body);
    for (const r of results.filter((x) => x.status !== 201)) expectProblem(r, 409, "conflict");
    expect((await list("notes", user.accessToken)).body.items).toHaveLength(1);
  });

  it("a request still holding the key makes a duplicate wait with 409 and Retry-After", async () => {
    const user = await signup();
    const db = createDb(env.DB);
    const now = Date.now();
    // What the first request leaves while its handler runs.
    const body = JSON.stringify({ title: "slow" });
    const hash = await hashOf("POST", "/v1/collections/notes/records", body);
    await db.insert(idempotencyKeys).values({
      scope: `user:${user.id}`,
      key: "k-busy",
      requestHash: hash,
      state: "in_flight",
      lockId: "other",
      lockedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + 86_400_000).toISOString(),
    });
    const res = await post(user.accessToken, "k-busy", { title: "slow" });
    expectProblem(res, 409, "conflict");
    expect(res.headers.get("retry-after")).toBe("1");
    expect((await list("notes", user.accessToken)).body.items).toEqual([]);

    // A claim whose request died long ago is taken over.
    await db.update(idempotencyKeys).set({ lockedAt: new Date(now - 10 * 60_000).toISOString() });
    const taken = await post(user.accessToken, "k-busy", { title: "slow" });
    expect(taken.status).toBe(201);
  });

  it("a validation error is not kept: the corrected retry with the same key runs once", async () => {
    const user = await signup();
    const bad = await post(user.accessToken, "k-bad", { title: "" });
    expectProblem(bad, 400, "validation_failed");
    expect(bad.headers.get("idempotent-replayed")).toBeNull();
    const fixed = await post(user.accessToken, "k-bad", { title: "fixed" });
    expect(fixed.status).toBe(201);
    const replayed = await post(user.accessToken, "k-bad", { title: "fixed" });
    expect(replayed.headers.get("idempotent-replayed")).toBe("true");
    expect(replayed.body.id).toBe(fixed.body.id);
    expect((await list("notes", user.accessToken)).body.items).toHaveLength(1);
  });

  it("rejects a malformed key; ignores the header for anonymous callers", async () => {
    const user = await signup();
    expectProblem(await post(user.accessToken, "has space"), 400, "validation_failed");
    expectProblem(await post(user.accessToken, "x".repeat(256)), 400, "validation_failed");
    const anon = await api(notes, { body: { title: "t" }, headers: { "idempotency-key": "k" } });
    expectProblem(anon, 401, "unauthorized");
  });

  it("expired keys are cleaned by the scheduled task, after which the key is fresh", async () => {
    const user = await signup();
    const first = await post(user.accessToken, "k-old");
    const db = createDb(env.DB);
    await idempotencyCleanup(env, db, new Date());
    expect((await post(user.accessToken, "k-old")).body.id).toBe(first.body.id);
    await idempotencyCleanup(env, db, new Date(Date.now() + 24 * 60 * 60 * 1000 + 1000));
    const rows = await db.select().from(idempotencyKeys);
    expect(rows.filter((r) => r.key === "k-old")).toEqual([]);
    const fresh = await post(user.accessToken, "k-old");
    expect(fresh.status).toBe(201);
    expect(fresh.body.id).not.toBe(first.body.id);
  });
});

/** The request hash the middleware stores (method, path, body). */
/** The request fingerprint the middleware stores (keyed: bodies may hold passwords). */
const hashOf = async (method: string, path: string, body: string) =>
  b64url(await hmac(await purposeKey(env.JWT_SECRET, "idempotency-fingerprint"), `${method} ${path}\n${body}`));

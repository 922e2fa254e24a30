/**
 * The v1.2 features stay off the hot path: teams, references, hooks, app check and release controls
 * add no D1 statement to a request that does not use them. Each hot route runs exactly its own statements
 * (health: `SELECT 1`; GET and list of notes: one SELECT on `app_notes`; a note's create: one batch
 * of the record and its change-log row), and no statement reads a table of a feature the request
 * does not use. Work left in `waitUntil` is counted too.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { app } from "../../src/router";
import { freshIp, signup, type TestUser } from "../helpers/api";
import { countingD1, type D1Call } from "./counting-d1";

/** One request through the app with a counting DB (and no DO call counted here: see live-quiet.test.ts). */
async function measure(path: string, init: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const { db, counter } = countingD1(env.DB);
  const headers = new Headers(init.headers);
  headers.set("cf-connecting-ip", freshIp());
  if (init.token) headers.set("authorization", `Bearer ${init.token}`);
  if (init.body !== undefined) headers.set("content-type", "application/json");
  const req = new Request(`https://outpost.test${path}`, {
    method: init.body !== undefined ? "POST" : "GET",
    headers,
    body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
  });
  const ctx = createExecutionContext();
  const res = await app.fetch(req, { ...env, DB: db }, ctx);
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return { status: res.status, body: text ? JSON.parse(text) : null, calls: counter.calls };
}

/** The tables of features a plain request on notes does not use: none may be read by a statement of its own. */
const UNUSED = [
  /"?team_members"?/, // teams
  /"?teams"?\b/,
  /"?config_values"?/, // release controls
  /"?config_state"?/,
  /"?short_links"?/,
  /"?webhooks"?/,
  /"?events"?\b/, // hooks: the outbox is written by triggers only when someone listens
  /"?event_runs"?/,
  /"?app_check_counts"?/, // app check: its counts are written in coalesced batches, never per request
];

/** The statements of a round trip, split (a batch's SQL is joined with " ; "). */
const statements = (calls: D1Call[]) => calls.flatMap((c) => c.sql.split(" ; "));

function expectNoUnused(calls: D1Call[]) {
  for (const s of statements(calls)) {
    // The change-log row's RETURNING asks `event_listeners` and `live_hubs` inside the same
    // statement (whether to drain events, whether to notify a hub): those are no statements.
    const own = s.replace(/EXISTS \(SELECT 1 FROM "?(event_listeners|live_hubs)"?[\s\S]*$/i, "");
    for (const t of UNUSED) expect(own, `a statement reads ${t}:\n${s}`).not.toMatch(t);
  }
}

let user: TestUser;
beforeAll(async () => {
  user = await signup({ password: "hot path password 1" });
  // The isolate's first authenticated request reads the revocation list (budgeted elsewhere).
  await measure("/v1/auth/sessions", { token: user.accessToken });
});

describe("hot path: no statement for features a request does not use", () => {
  it("GET /v1/health: one SELECT 1", async () => {
    const m = await measure("/v1/health");
    expect(m.status).toBe(200);
    expect(m.calls).toEqual([expect.objectContaining({ kind: "statement", statements: 1 })]);
    expect(m.calls[0]!.sql.toLowerCase()).toContain("select 1");
  });

  it("create a note: one batch of two statements (the record and its change-log row)", async () => {
    const m = await measure("/v1/collections/notes/records", { token: user.accessToken, body: { title: "hot" } });
    expect(m.status, JSON.stringify(m.body)).toBe(201);
    expect(m.calls).toEqual([expect.objectContaining({ kind: "batch", statements: 2 })]);
    const [record, log] = statements(m.calls);
    expect(record).toMatch(/^insert into "app_notes"/);
    expect(log).toMatch(/^insert into "record_changes"/);
    expectNoUnused(m.calls);
  });

  it("GET a note and list notes: one SELECT on app_notes each", async () => {
    const created = await measure("/v1/collections/notes/records", { token: user.accessToken, body: { title: "x" } });
    const got = await measure(`/v1/collections/notes/records/${created.body.id}`, { token: user.accessToken });
    expect(got.status).toBe(200);
    const where = encodeURIComponent(JSON.stringify({ pinned: false }));
    const listed = await measure(`/v1/collections/notes/records?where=${where}&limit=20`, {
      token: user.accessToken,
    });
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((x: { id: string }) => x.id)).toContain(created.body.id);
    for (const m of [got, listed]) {
      expect(m.calls).toEqual([expect.objectContaining({ kind: "statement", statements: 1 })]);
      expect(m.calls[0]!.sql).toMatch(/^select .* from "app_notes"/);
      expectNoUnused(m.calls);
    }
  });

  it("an app's client header (release controls' forced-update check) adds no statement", async () => {
    const headers = { "Outpost-Client": "ios/1.0.0" };
    // The isolate's copy of the release settings, read once per isolate and period (budgeted elsewhere).
    await measure("/v1/config");
    const got = await measure("/v1/health", { headers });
    expect(got.status).toBe(200);
    expect(got.calls).toHaveLength(1);
    const created = await measure("/v1/collections/notes/records", {
      token: user.accessToken,
      body: { title: "from an app" },
      headers,
    });
    expect(created.status).toBe(201);
    expect(created.calls).toEqual([expect.objectContaining({ kind: "batch", statements: 2 })]);
    expectNoUnused(created.calls);
  });
});

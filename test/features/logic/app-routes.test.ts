/**
 * The app's own routes under /v1/app (src/app/routes.ts): POST /v1/app/lists/{id}/clear-done
 * deletes a shopping list's done items for a member (or above) of its team, through the write path
 * (tombstones in /changes); a viewer gets 403, a stranger 404, bad tokens 401; it is documented.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { api, documentedOperations, expectProblem } from "../../helpers/api";
import { expectStrangersRefused, expectWrongOwnerRefused } from "../../helpers/refusals";
import { teamWithActors } from "../teams/helpers";

const ITEMS = "/v1/collections/items";
const clear = (listId: string) => `/v1/app/lists/${listId}/clear-done`;

type Team = Awaited<ReturnType<typeof teamWithActors>>;
let t: Team;

async function newList(title = "Groceries"): Promise<string> {
  const res = await api("/v1/collections/lists/records", {
    token: t.users.owner.accessToken,
    body: { teamId: t.team.id, title },
  });
  expect(res.status, res.text).toBe(201);
  return res.body.id;
}

async function item(listId: string, text: string, done: boolean, token = t.users.member.accessToken) {
  const res = await api(`${ITEMS}/records`, { token, body: { teamId: t.team.id, listId, text, done } });
  expect(res.status, res.text).toBe(201);
  return res.body.id as string;
}

const itemsOf = async (listId: string) => {
  const where = encodeURIComponent(JSON.stringify({ listId }));
  const res = await api(`${ITEMS}/records?where=${where}&limit=100`, { token: t.users.viewer.accessToken });
  expect(res.status, res.text).toBe(200);
  return (res.body.items as { id: string }[]).map((x) => x.id).sort();
};

async function feedFrom(since?: string) {
  const q = new URLSearchParams({ limit: "200", ...(since ? { since } : {}) });
  const res = await api(`${ITEMS}/changes?${q}`, { token: t.users.owner.accessToken });
  expect(res.status, res.text).toBe(200);
  expect(res.body.hasMore).toBe(false);
  return res.body as { items: { id: string; deleted?: boolean }[]; nextCursor: string };
}

beforeAll(async () => {
  t = await teamWithActors();
});

describe("POST /v1/app/lists/{id}/clear-done", () => {
  it("a member deletes the list's done items (others' too), keeps the rest; tombstones reach /changes", async () => {
    const listId = await newList();
    const other = await newList("Hardware");
    const mine = await item(listId, "milk", true);
    const theirs = await item(listId, "bread", true, t.users.admin.accessToken);
    const open = await item(listId, "eggs", false);
    const elsewhere = await item(other, "nails", true);
    const { nextCursor } = await feedFrom();

    const res = await api(clear(listId), { method: "POST", token: t.users.member.accessToken });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ deleted: 2 });

    expect(await itemsOf(listId)).toEqual([open]);
    expect(await itemsOf(other)).toEqual([elsewhere]);
    const feed = await feedFrom(nextCursor);
    expect(feed.items).toEqual(
      expect.arrayContaining([
        { id: mine, deleted: true, version: 2 },
        { id: theirs, deleted: true, version: 2 },
      ]),
    );
    expect(feed.items).toHaveLength(2);

    // Nothing left to clear: 0.
    const again = await api(clear(listId), { method: "POST", token: t.users.admin.accessToken });
    expect(again.body).toEqual({ deleted: 0 });
  });

  it("an Idempotency-Key retry gets the first answer and deletes nothing more", async () => {
    const listId = await newList();
    await item(listId, "a", true);
    const headers = { "idempotency-key": crypto.randomUUID() };
    const first = await api(clear(listId), { method: "POST", token: t.users.member.accessToken, headers });
    expect(first.body).toEqual({ deleted: 1 });
    await item(listId, "b", true);
    const retry = await api(clear(listId), { method: "POST", token: t.users.member.accessToken, headers });
    expect(retry.status).toBe(200);
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect(retry.body).toEqual({ deleted: 1 });
    expect(await itemsOf(listId)).toHaveLength(1);
  });

  it("a viewer gets 403 and nothing is deleted", async () => {
    const listId = await newList();
    await item(listId, "milk", true);
    const res = await api(clear(listId), { method: "POST", token: t.users.viewer.accessToken });
    expectProblem(res, 403, "forbidden");
    expect(await itemsOf(listId)).toHaveLength(1);
  });

  it("a stranger, a removed member and an unknown list get 404", async () => {
    const listId = await newList();
    await item(listId, "milk", true);
    for (const who of ["stranger", "removed"] as const)
      expectProblem(await api(clear(listId), { method: "POST", token: t.users[who].accessToken }), 404, "not_found");
    expectProblem(
      await api(clear("no-such-list"), { method: "POST", token: t.users.owner.accessToken }),
      404,
      "not_found",
    );
    expect(await itemsOf(listId)).toHaveLength(1);
    await expectWrongOwnerRefused({ method: "POST", path: clear(listId) }, t.users.member, t.users.stranger);
  });

  it("no token, a bad or tampered token: 401; the service key: 403", async () => {
    const listId = await newList();
    await item(listId, "milk", true);
    await expectStrangersRefused({ method: "POST", path: clear(listId) }, t.users.member);
    expectProblem(await api(clear(listId), { method: "POST", token: t.tokenOf("service") }), 403, "forbidden");
    expect(await itemsOf(listId)).toHaveLength(1);
  });

  it("refuses a body it does not take and a malformed id", async () => {
    const listId = await newList();
    await item(listId, "milk", true);
    const token = t.users.member.accessToken;
    expectProblem(await api(clear("x".repeat(65)), { method: "POST", token }), 400, "validation_failed");
    expectProblem(await api(clear(listId), { method: "POST", token, body: { all: true } }), 400, "validation_failed");
    expect(await itemsOf(listId)).toHaveLength(1);
    // An empty JSON object is the same as no body.
    expect((await api(clear(listId), { method: "POST", token, body: {} })).body).toEqual({ deleted: 1 });
  });

  it("is rate limited per user", async () => {
    const listId = await newList();
    const user = t.users.admin;
    let limited = null as Awaited<ReturnType<typeof api>> | null;
    for (let i = 0; i < 40 && !limited; i++) {
      const res = await api(clear(listId), { method: "POST", token: user.accessToken });
      if (res.status === 429) limited = res;
      else expect(res.status, res.text).toBe(200);
    }
    expect(limited, "no 429 within 40 calls").not.toBeNull();
    expectProblem(limited!, 429, "rate_limited");
    expect(limited!.headers.get("retry-after")).toBe("60");
  });

  it("is in /v1/openapi.json, with its 200 schema", async () => {
    expect(await documentedOperations("/v1/app")).toEqual(["POST /v1/app/lists/{id}/clear-done"]);
    const doc = await api("/v1/openapi.json");
    const op = doc.body.paths["/v1/app/lists/{id}/clear-done"].post;
    expect(op.responses["200"].content["application/json"].schema).toMatchObject({
      properties: { deleted: { type: "number" } },
    });
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(["200", "401", "403", "404", "429"]));
    expect(env.ENVIRONMENT).toBe("test");
  });
});

/**
 * Authorization on fresh data: with a read replica that still lists a removed member (or misses a new
 * block), every chat route that acts on a room decides on the primary's data and refuses.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../../src/router";
import { api, expectProblem, freshIp, signup, type TestUser } from "../../helpers/api";
import { block } from "../blocks/helpers";
import { createGroup, type RoomBody, sendRest } from "./helpers";
import { type LaggyD1, laggyD1 } from "./laggy-d1";

/** Calls the Worker with `lag`'s D1 binding, as `api()` does (problem bodies parsed). */
async function lagged(
  lag: LaggyD1,
  path: string,
  opts: { method?: string; token: string; body?: unknown; headers?: Record<string, string> },
) {
  const headers = new Headers({
    "cf-connecting-ip": freshIp(),
    authorization: `Bearer ${opts.token}`,
    ...opts.headers,
  });
  if (opts.body !== undefined) headers.set("content-type", "application/json");
  const req = new Request(`https://outpost.test${path}`, {
    method: opts.method ?? (opts.body !== undefined ? "POST" : "GET"),
    headers,
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
  });
  const ctx = createExecutionContext();
  const res = await app.fetch(req, { ...env, DB: lag.db }, ctx);
  const text = res.status === 101 ? "" : await res.text();
  await waitOnExecutionContext(ctx);
  res.webSocket?.accept();
  res.webSocket?.close(1000, "test");
  return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : null };
}

async function groupOfTwo(): Promise<{ alice: TestUser; bob: TestUser; room: RoomBody }> {
  const [alice, bob] = [await signup(), await signup()];
  return { alice, bob, room: await createGroup(alice, [bob]) };
}

describe("chat access decided on fresh data", () => {
  // …while the replica still lists them: send, read, delete and manage all read the primary.
  it("a member removed a moment ago is refused at once", async () => {
    const { alice, bob, room } = await groupOfTwo();
    const carol = await signup();
    expect((await sendRest(bob, room.id, "before")).status).toBe(201);
    const lag = laggyD1(["room_members"]);
    await lag.snapshot();
    expect(
      (await api(`/v1/rooms/${room.id}/members/${bob.id}`, { method: "DELETE", token: alice.accessToken })).status,
    ).toBe(204);

    // The lag is real: the replica still shows Bob the room (as it was when he was a member).
    const view = await lagged(lag, `/v1/rooms/${room.id}`, { token: bob.accessToken });
    expect(view.status).toBe(200);
    expect(view.body.members.map((m: { userId: string }) => m.userId)).toContain(bob.id);

    const t = bob.accessToken;
    const id = room.id;
    expectProblem(
      await lagged(lag, `/v1/rooms/${id}/messages`, { token: t, body: { clientId: "x1", text: "hi" } }),
      404,
      "not_found",
    );
    expectProblem(await lagged(lag, `/v1/rooms/${id}/messages`, { token: t }), 404, "not_found");
    expectProblem(await lagged(lag, `/v1/rooms/${id}/read`, { token: t, body: { seq: 1 } }), 404, "not_found");
    expectProblem(await lagged(lag, `/v1/rooms/${id}/messages/1`, { method: "DELETE", token: t }), 404, "not_found");
    expectProblem(
      await lagged(lag, `/v1/rooms/${id}/members`, { token: t, body: { userId: carol.id } }),
      404,
      "not_found",
    );
    expectProblem(await lagged(lag, `/v1/rooms/${id}/members/me`, { method: "DELETE", token: t }), 404, "not_found");
    // The socket: the room object re-checks on the primary.
    expectProblem(
      await lagged(lag, `/v1/rooms/${id}/ws`, { token: t, headers: { upgrade: "websocket" } }),
      404,
      "not_found",
    );

    // Nothing happened: one message, not deleted, and Carol is not in the room.
    const history = await api(`/v1/rooms/${id}/messages`, { token: alice.accessToken });
    expect(history.body.items.map((m: { text: string | null }) => m.text)).toEqual(["before"]);
    const now = await api<RoomBody>(`/v1/rooms/${id}`, { token: alice.accessToken });
    expect(now.body.members.map((m) => m.userId)).toEqual([alice.id]);
    // Those routes opened their D1 session at the primary.
    expect(lag.sessions.filter((s) => s === "first-primary").length).toBeGreaterThanOrEqual(6);
  });

  it("a member still reads and sends through the same lagging replica (only the decision moved)", async () => {
    const { bob, room } = await groupOfTwo();
    const lag = laggyD1(["room_members"]);
    await lag.snapshot();
    const sent = await lagged(lag, `/v1/rooms/${room.id}/messages`, {
      token: bob.accessToken,
      body: { clientId: "ok-1", text: "still here" },
    });
    expect(sent.status, sent.text).toBe(201);
    expect((await lagged(lag, `/v1/rooms/${room.id}/messages`, { token: bob.accessToken })).body.items).toHaveLength(1);
  });

  it("a block made a moment ago holds for room creation and adds while the replica misses it", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const own = await createGroup(alice);
    const lag = laggyD1(["blocks"]);
    await lag.snapshot();
    expect((await block(bob, alice.id)).status).toBe(201);
    const t = alice.accessToken;
    expectProblem(
      await lagged(lag, "/v1/rooms", { token: t, body: { kind: "group", name: "g", memberIds: [bob.id] } }),
      403,
      "forbidden",
    );
    expectProblem(
      await lagged(lag, "/v1/rooms", { token: t, body: { kind: "direct", memberIds: [bob.id] } }),
      403,
      "forbidden",
    );
    expectProblem(
      await lagged(lag, `/v1/rooms/${own.id}/members`, { token: t, body: { userId: bob.id } }),
      403,
      "forbidden",
    );
  });

  it("a rejoin refused by a block made a moment ago, while the replica misses it", async () => {
    const { alice, bob, room } = await groupOfTwo();
    expect((await api(`/v1/rooms/${room.id}/members/me`, { method: "DELETE", token: bob.accessToken })).status).toBe(
      204,
    );
    const lag = laggyD1(["blocks"]);
    await lag.snapshot();
    expect((await block(alice, bob.id)).status).toBe(201);
    expectProblem(
      await lagged(lag, `/v1/rooms/${room.id}/members`, { token: bob.accessToken, body: { userId: "me" } }),
      403,
      "forbidden",
    );
  });
});

import { describe, expect, it } from "vitest";
import { api, documentedOperations, expectProblem, serviceKey, signup, type TestUser } from "../../helpers/api";
import { createGroup, type RoomBody, sendRest } from "./helpers";

interface Route {
  /** The operation as the OpenAPI document names it. */
  doc: string;
  method: string;
  path: (roomId: string, other: TestUser) => string;
  body?: (other: TestUser) => unknown;
}

/** Every REST route that acts on an existing room (the socket route is ws.test.ts's: it needs an upgrade). */
const roomRoutes: Route[] = [
  { doc: "GET /v1/rooms/{id}", method: "GET", path: (id) => `/v1/rooms/${id}` },
  {
    doc: "POST /v1/rooms/{id}/members",
    method: "POST",
    path: (id) => `/v1/rooms/${id}/members`,
    body: (o) => ({ userId: o.id }),
  },
  {
    doc: "DELETE /v1/rooms/{id}/members/{userId}",
    method: "DELETE",
    path: (id, o) => `/v1/rooms/${id}/members/${o.id}`,
  },
  {
    doc: "PATCH /v1/rooms/{id}/members/me",
    method: "PATCH",
    path: (id) => `/v1/rooms/${id}/members/me`,
    body: () => ({ muted: true }),
  },
  { doc: "GET /v1/rooms/{id}/messages", method: "GET", path: (id) => `/v1/rooms/${id}/messages` },
  {
    doc: "POST /v1/rooms/{id}/messages",
    method: "POST",
    path: (id) => `/v1/rooms/${id}/messages`,
    body: () => ({ clientId: "sneaky", text: "let me in" }),
  },
  { doc: "DELETE /v1/rooms/{id}/messages/{seq}", method: "DELETE", path: (id) => `/v1/rooms/${id}/messages/1` },
  { doc: "POST /v1/rooms/{id}/read", method: "POST", path: (id) => `/v1/rooms/${id}/read`, body: () => ({ seq: 0 }) },
];
const topRoutes: Route[] = [
  { doc: "POST /v1/rooms", method: "POST", path: () => "/v1/rooms", body: () => ({ memberIds: [] }) },
  { doc: "GET /v1/rooms", method: "GET", path: () => "/v1/rooms" },
];

describe("chat rooms over REST: security", () => {
  it("the routes below are every documented REST chat route", async () => {
    const covered = [...topRoutes, ...roomRoutes].map((r) => r.doc);
    expect([...covered, "GET /v1/rooms/{id}/ws"].sort()).toEqual(await documentedOperations("/v1/rooms"));
  });

  it("every chat route refuses a missing token, a garbage token and an unsigned token with 401", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    for (const r of [...topRoutes, ...roomRoutes]) {
      for (const token of [null, "garbage", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."]) {
        const res = await api(r.path(room.id, bob), {
          method: r.method,
          token,
          ...(r.body ? { body: r.body(bob) } : {}),
        });
        expectProblem(res, 401, "unauthorized");
      }
    }
  });

  it("a stranger gets 404 from every room route, and nothing changes", async () => {
    const [alice, bob, mallory] = [await signup(), await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    await sendRest(alice, room.id, "private talk");
    for (const r of roomRoutes) {
      const res = await api(r.path(room.id, bob), {
        method: r.method,
        token: mallory.accessToken,
        ...(r.body ? { body: r.body(mallory) } : {}),
      });
      expectProblem(res, 404, "not_found");
    }
    const view = await api<RoomBody>(`/v1/rooms/${room.id}`, { token: alice.accessToken });
    expect(view.body.members.map((m) => m.userId)).toEqual([alice.id, bob.id]);
    expect(view.body.members.every((m) => m.lastReadSeq === (m.userId === alice.id ? 1 : 0))).toBe(true);
    expect(view.body.muted).toBe(false);
    expect(view.body.lastSeq).toBe(1);
    const history = await api(`/v1/rooms/${room.id}/messages`, { token: alice.accessToken });
    expect(
      history.body.items.map((m: { text: string | null; deleted?: boolean }) => [m.text, m.deleted ?? false]),
    ).toEqual([["private talk", false]]);
    expect((await api(`/v1/rooms`, { token: mallory.accessToken })).body.items).toEqual([]);
  });

  it("a member who is not the owner cannot add members (403) or remove others (403)", async () => {
    const [alice, bob, carol] = [await signup(), await signup(), await signup()];
    const room = await createGroup(alice, [bob, carol]);
    const mallory = await signup();
    expectProblem(
      await api(`/v1/rooms/${room.id}/members`, { token: bob.accessToken, body: { userId: mallory.id } }),
      403,
      "forbidden",
    );
    expectProblem(
      await api(`/v1/rooms/${room.id}/members/${carol.id}`, { method: "DELETE", token: bob.accessToken }),
      403,
      "forbidden",
    );
    expectProblem(
      await api(`/v1/rooms/${room.id}/members/${alice.id}`, { method: "DELETE", token: bob.accessToken }),
      403,
      "forbidden",
    );
    const view = await api<RoomBody>(`/v1/rooms/${room.id}`, { token: alice.accessToken });
    expect(view.body.members.map((m) => m.userId)).toEqual([alice.id, bob.id, carol.id]);
  });

  it("a removed member loses access to every room route", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    await api(`/v1/rooms/${room.id}/members/${bob.id}`, { method: "DELETE", token: alice.accessToken });
    for (const r of roomRoutes) {
      const res = await api(r.path(room.id, alice), {
        method: r.method,
        token: bob.accessToken,
        ...(r.body ? { body: r.body(alice) } : {}),
      });
      expectProblem(res, 404, "not_found");
    }
  });

  it("the service key is not a chat user (403): rooms act on the caller's own membership", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    expectProblem(await api("/v1/rooms", { token: serviceKey() }), 403, "forbidden");
    expectProblem(
      await api(`/v1/rooms/${room.id}/messages`, { token: serviceKey(), body: { clientId: "svc", text: "hi" } }),
      403,
      "forbidden",
    );
  });

  it("a message is attributed to the token's user; a body cannot name another sender or room", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const other = await createGroup(bob);
    expectProblem(
      await api(`/v1/rooms/${room.id}/messages`, {
        token: bob.accessToken,
        body: { clientId: "x", text: "hi", senderId: alice.id },
      }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api(`/v1/rooms/${room.id}/messages`, {
        token: bob.accessToken,
        body: { clientId: "x", text: "hi", roomId: other.id },
      }),
      400,
      "validation_failed",
    );
    const ok = await sendRest(bob, room.id, "mine");
    expect(ok.body).toMatchObject({ senderId: bob.id, roomId: room.id });
  });
});

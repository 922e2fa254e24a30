import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, documentedOperations, signup } from "../../helpers/api";
import { createGroup, insertFile, type RoomBody, sendRest } from "./helpers";

describe("chat rooms over REST: happy paths", () => {
  it("POST /v1/rooms creates a group owned by the caller", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const res = await api<RoomBody>("/v1/rooms", {
      token: alice.accessToken,
      body: { name: "  Climbing  ", memberIds: [bob.id, bob.id, alice.id] },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      kind: "group",
      name: "Climbing",
      createdBy: alice.id,
      lastMessage: null,
      lastSeq: 0,
      unreadCount: 0,
      muted: false,
    });
    expect(res.body.members).toEqual([
      { userId: alice.id, role: "owner", lastReadSeq: 0 },
      { userId: bob.id, role: "member", lastReadSeq: 0 },
    ]);
    expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(res.body.createdAt)).not.toBeNaN();
  });

  it("a direct room for the same two users is returned again (200), from either side", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const first = await api<RoomBody>("/v1/rooms", {
      token: alice.accessToken,
      body: { kind: "direct", memberIds: [bob.id] },
    });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ kind: "direct", name: null });
    expect(first.body.members.map((m) => m.role)).toEqual(["member", "member"]);
    const again = await api<RoomBody>("/v1/rooms", {
      token: alice.accessToken,
      body: { kind: "direct", memberIds: [bob.id] },
    });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    const fromBob = await api<RoomBody>("/v1/rooms", {
      token: bob.accessToken,
      body: { kind: "direct", memberIds: [alice.id] },
    });
    expect(fromBob.status).toBe(200);
    expect(fromBob.body.id).toBe(first.body.id);
    const carol = await signup();
    const concurrent = await Promise.all(
      [0, 1].map(() =>
        api<RoomBody>("/v1/rooms", { token: carol.accessToken, body: { kind: "direct", memberIds: [alice.id] } }),
      ),
    );
    expect(new Set(concurrent.map((r) => r.body.id)).size).toBe(1);
    expect(concurrent.map((r) => r.status).sort()).toEqual([200, 201]);
  });

  it("GET /v1/rooms lists the caller's rooms by activity, with lastMessage and unreadCount, paginated", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const r1 = await createGroup(alice, [bob], "one");
    const r2 = await createGroup(alice, [bob], "two");
    const r3 = await createGroup(bob, [alice], "three");
    await sendRest(bob, r1.id, "wake up one");
    await sendRest(bob, r1.id, "and again");
    await createGroup(bob, [], "not Alice's");

    const page1 = await api(`/v1/rooms?limit=2`, { token: alice.accessToken });
    expect(page1.status).toBe(200);
    expect(page1.body.items.map((r: RoomBody) => r.id)).toEqual([r1.id, r3.id]);
    expect(page1.body.items[0]).toMatchObject({
      unreadCount: 2,
      lastSeq: 2,
      lastMessage: { seq: 2, text: "and again", senderId: bob.id },
    });
    expect(page1.body.nextCursor).toEqual(expect.any(String));
    const page2 = await api(`/v1/rooms?limit=2&cursor=${page1.body.nextCursor}`, { token: alice.accessToken });
    expect(page2.body.items.map((r: RoomBody) => r.id)).toEqual([r2.id]);
    expect(page2.body.nextCursor).toBeNull();
  });

  it("GET /v1/rooms/:id returns the room to a member", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const res = await api<RoomBody>(`/v1/rooms/${room.id}`, { token: bob.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ...room, muted: false });
  });

  it("the owner adds a member (201); the new member starts with the history read and can send", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice);
    await sendRest(alice, room.id, "history");
    const res = await api<RoomBody>(`/v1/rooms/${room.id}/members`, {
      token: alice.accessToken,
      body: { userId: bob.id },
    });
    expect(res.status).toBe(201);
    expect(res.body.members).toContainEqual({ userId: bob.id, role: "member", lastReadSeq: 1 });
    const bobsView = await api<RoomBody>(`/v1/rooms/${room.id}`, { token: bob.accessToken });
    expect(bobsView.body.unreadCount).toBe(0);
    expect((await sendRest(bob, room.id, "hello all")).status).toBe(201);
  });

  it("the owner removes a member, a member leaves (204), and an owner who leaves hands the room on", async () => {
    const [alice, bob, carol] = [await signup(), await signup(), await signup()];
    const room = await createGroup(alice, [bob, carol]);
    expect(
      (await api(`/v1/rooms/${room.id}/members/${carol.id}`, { method: "DELETE", token: alice.accessToken })).status,
    ).toBe(204);
    expect((await api(`/v1/rooms/${room.id}`, { token: carol.accessToken })).status).toBe(404);
    expect((await api(`/v1/rooms/${room.id}/members/me`, { method: "DELETE", token: alice.accessToken })).status).toBe(
      204,
    );
    const left = await api<RoomBody>(`/v1/rooms/${room.id}`, { token: bob.accessToken });
    expect(left.body.members).toEqual([{ userId: bob.id, role: "owner", lastReadSeq: 0 }]);
    expect(
      (await api(`/v1/rooms/${room.id}/members/${bob.id}`, { method: "DELETE", token: bob.accessToken })).status,
    ).toBe(204);
    expect((await api(`/v1/rooms`, { token: bob.accessToken })).body.items).toEqual([]);
  });

  it("deleting an owner's account drops their memberships, hands their groups on; messages stay", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    await sendRest(alice, room.id, "last words");
    expect((await api("/v1/me", { method: "DELETE", token: alice.accessToken })).status).toBe(204);
    const view = await api<RoomBody>(`/v1/rooms/${room.id}`, { token: bob.accessToken });
    expect(view.body.members).toEqual([{ userId: bob.id, role: "owner", lastReadSeq: 0 }]);
    expect(view.body.lastMessage).toMatchObject({ senderId: alice.id, text: "last words" });
    const left = await env.DB.prepare("SELECT count(*) AS n FROM room_members WHERE user_id = ?")
      .bind(alice.id)
      .first<{ n: number }>();
    expect(left?.n).toBe(0);
  });

  it("PATCH /v1/rooms/:id/members/me mutes and unmutes (stored on the membership for push)", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const res = await api(`/v1/rooms/${room.id}/members/me`, {
      method: "PATCH",
      token: bob.accessToken,
      body: { muted: true },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ userId: bob.id, role: "member", lastReadSeq: 0, muted: true });
    const row = await env.DB.prepare("SELECT muted FROM room_members WHERE room_id = ? AND user_id = ?")
      .bind(room.id, bob.id)
      .first<{ muted: number }>();
    expect(row?.muted).toBe(1);
    expect((await api<RoomBody>(`/v1/rooms/${room.id}`, { token: bob.accessToken })).body.muted).toBe(true);
    expect((await api<RoomBody>(`/v1/rooms/${room.id}`, { token: alice.accessToken })).body.muted).toBe(false);
    const off = await api(`/v1/rooms/${room.id}/members/me`, {
      method: "PATCH",
      token: bob.accessToken,
      body: { muted: false },
    });
    expect(off.body.muted).toBe(false);
  });

  it("POST /v1/rooms/:id/messages stores (201); a retry with its clientId returns the first (200)", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    const file = await insertFile(alice.id, "private");
    const first = await api(`/v1/rooms/${room.id}/messages`, {
      token: alice.accessToken,
      body: { clientId: "k-1", text: "photo", fileId: file },
    });
    expect(first.status).toBe(201);
    expect(first.body).toEqual({
      id: expect.any(String),
      roomId: room.id,
      seq: 1,
      clientId: "k-1",
      senderId: alice.id,
      text: "photo",
      fileId: file,
      createdAt: expect.any(String),
    });
    const retry = await api(`/v1/rooms/${room.id}/messages`, {
      token: alice.accessToken,
      body: { clientId: "k-1", text: "photo" },
    });
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual(first.body);
    // clientIds are per sender: Bob may use the same one.
    const bobs = await api(`/v1/rooms/${room.id}/messages`, {
      token: bob.accessToken,
      body: { clientId: "k-1", text: "mine" },
    });
    expect(bobs.status).toBe(201);
    expect(bobs.body.seq).toBe(2);
  });

  it("GET /v1/rooms/:id/messages pages backward from the newest and forward from after=", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    for (let i = 1; i <= 7; i++) await sendRest(alice, room.id, `m${i}`);
    const seqs = (b: { items: { seq: number }[] }) => b.items.map((m) => m.seq);

    const latest = await api(`/v1/rooms/${room.id}/messages?limit=3`, { token: alice.accessToken });
    expect(seqs(latest.body)).toEqual([5, 6, 7]);
    const older = await api(`/v1/rooms/${room.id}/messages?limit=3&cursor=${latest.body.nextCursor}`, {
      token: alice.accessToken,
    });
    expect(seqs(older.body)).toEqual([2, 3, 4]);
    const oldest = await api(`/v1/rooms/${room.id}/messages?limit=3&cursor=${older.body.nextCursor}`, {
      token: alice.accessToken,
    });
    expect(seqs(oldest.body)).toEqual([1]);
    expect(oldest.body.nextCursor).toBeNull();

    const fwd = await api(`/v1/rooms/${room.id}/messages?after=2&limit=2`, { token: alice.accessToken });
    expect(seqs(fwd.body)).toEqual([3, 4]);
    const fwd2 = await api(`/v1/rooms/${room.id}/messages?limit=2&cursor=${fwd.body.nextCursor}`, {
      token: alice.accessToken,
    });
    expect(seqs(fwd2.body)).toEqual([5, 6]);
    const range = await api(`/v1/rooms/${room.id}/messages?after=1&before=4`, { token: alice.accessToken });
    expect(seqs(range.body)).toEqual([2, 3]);
    expect(range.body.nextCursor).toBeNull();
    const before = await api(`/v1/rooms/${room.id}/messages?before=3`, { token: alice.accessToken });
    expect(seqs(before.body)).toEqual([1, 2]);
  });

  it("POST /v1/rooms/:id/read moves the read position forward only (204) and updates unreadCount", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice, [bob]);
    for (let i = 1; i <= 3; i++) await sendRest(alice, room.id, `m${i}`);
    expect((await api<RoomBody>(`/v1/rooms/${room.id}`, { token: bob.accessToken })).body.unreadCount).toBe(3);
    const res = await api(`/v1/rooms/${room.id}/read`, { token: bob.accessToken, body: { seq: 2 } });
    expect(res.status).toBe(204);
    expect((await api<RoomBody>(`/v1/rooms/${room.id}`, { token: bob.accessToken })).body.unreadCount).toBe(1);
    expect((await api(`/v1/rooms/${room.id}/read`, { token: bob.accessToken, body: { seq: 1 } })).status).toBe(204);
    const view = await api<RoomBody>(`/v1/rooms/${room.id}`, { token: bob.accessToken });
    expect(view.body.members.find((m) => m.userId === bob.id)?.lastReadSeq).toBe(2);
  });

  it("a retried POST with the same Idempotency-Key creates the room once and answers the same", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const send = () =>
      api<RoomBody>("/v1/rooms", {
        token: alice.accessToken,
        headers: { "idempotency-key": "create-team-1" },
        body: { name: "Once", memberIds: [bob.id] },
      });
    const first = await send();
    const retry = await send();
    expect(first.status).toBe(201);
    expect(retry.status).toBe(201);
    expect(retry.body.id).toBe(first.body.id);
    expect((await api("/v1/rooms", { token: alice.accessToken })).body.items).toHaveLength(1);
  });

  it("the OpenAPI document lists every chat route, and no other under /v1/rooms", async () => {
    expect(await documentedOperations("/v1/rooms")).toEqual(
      [
        "POST /v1/rooms",
        "GET /v1/rooms",
        "GET /v1/rooms/{id}",
        "POST /v1/rooms/{id}/members",
        "PATCH /v1/rooms/{id}/members/me",
        "DELETE /v1/rooms/{id}/members/{userId}",
        "GET /v1/rooms/{id}/messages",
        "POST /v1/rooms/{id}/messages",
        "DELETE /v1/rooms/{id}/messages/{seq}",
        "POST /v1/rooms/{id}/read",
        "GET /v1/rooms/{id}/ws",
      ].sort(),
    );
  });
});

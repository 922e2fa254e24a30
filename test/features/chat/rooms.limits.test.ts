/**
 * Abuse limits on pulling people into rooms: a per-user rate limit on room creation and member
 * adds (the ROOMS_LIMITER binding), and a per-user cap on distinct people added per UTC day.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { limits } from "../../../src/config";
import { api, expectProblem, fetchWithEnv, freshIp, signup, type TestUser } from "../../helpers/api";
import { createGroup, type RoomBody } from "./helpers";

/** Calls the app with some bindings replaced (here: a rate limiter that says no, or records). */
async function callWith(overrides: Partial<Env>, path: string, token: string, body: unknown) {
  const req = new Request(`https://outpost.test${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "cf-connecting-ip": freshIp() },
    body: JSON.stringify(body),
  });
  const res = await fetchWithEnv(req, overrides);
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : null };
}

const refusing = { limit: async () => ({ success: false }) } as unknown as RateLimit;
function recording() {
  const keys: string[] = [];
  return {
    keys,
    limiter: {
      limit: async (o: { key: string }) => {
        keys.push(o.key);
        return { success: true };
      },
    } as unknown as RateLimit,
  };
}

const today = () => new Date().toISOString().slice(0, 10);
/** Records that `user` already added `n` (made-up) distinct people today. */
async function alreadyAdded(user: TestUser, n: number, day = today()) {
  const ids = Array.from({ length: n }, (_, i) => `seeded-${day}-${i}`);
  await env.DB.prepare("INSERT INTO room_adds (adder_id, day, added_id) SELECT ?, ?, value FROM json_each(?)")
    .bind(user.id, day, JSON.stringify(ids))
    .run();
}
const guest = async (): Promise<TestUser> => {
  const res = await api("/v1/auth/anonymous", { body: {} });
  expect(res.status).toBe(201);
  return {
    id: res.body.user.id,
    email: "",
    password: "",
    accessToken: res.body.session.accessToken,
    refreshToken: res.body.session.refreshToken,
  };
};
const secondsToMidnight = () => Math.ceil((Date.parse(`${today()}T00:00:00Z`) + 86_400_000 - Date.now()) / 1000);

describe("rate limit on room creation and member adds", () => {
  it("POST /v1/rooms over the limit → 429 rate_limited with Retry-After, and no room", async () => {
    const [alice, bob] = [await signup(), await signup()];
    for (const body of [
      { kind: "group", name: "g", memberIds: [bob.id] },
      { kind: "direct", memberIds: [bob.id] },
    ]) {
      const res = await callWith({ ROOMS_LIMITER: refusing }, "/v1/rooms", alice.accessToken, body);
      expectProblem(res, 429, "rate_limited");
      expect(res.headers.get("retry-after")).toBe(String(limits.chatRoomWritesPeriodSec));
    }
    expect((await api("/v1/rooms", { token: alice.accessToken })).body.items).toEqual([]);
  });

  it("POST /v1/rooms/:id/members over the limit → 429 rate_limited, and nobody is added", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const room = await createGroup(alice);
    const res = await callWith({ ROOMS_LIMITER: refusing }, `/v1/rooms/${room.id}/members`, alice.accessToken, {
      userId: bob.id,
    });
    expectProblem(res, 429, "rate_limited");
    expect(res.headers.get("retry-after")).toBe(String(limits.chatRoomWritesPeriodSec));
    expect(
      (await api<RoomBody>(`/v1/rooms/${room.id}`, { token: alice.accessToken })).body.members.map((m) => m.userId),
    ).toEqual([alice.id]);
  });

  it("the limit is counted per user, not per address: creating and adding spend the same user's budget", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const { keys, limiter } = recording();
    const created = await callWith({ ROOMS_LIMITER: limiter }, "/v1/rooms", alice.accessToken, { memberIds: [] });
    expect(created.status).toBe(201);
    expect(
      (
        await callWith({ ROOMS_LIMITER: limiter }, `/v1/rooms/${created.body.id}/members`, alice.accessToken, {
          userId: bob.id,
        })
      ).status,
    ).toBe(201);
    expect(
      (
        await callWith({ ROOMS_LIMITER: limiter }, "/v1/rooms", bob.accessToken, {
          kind: "direct",
          memberIds: [alice.id],
        })
      ).status,
    ).toBe(201);
    expect(keys).toEqual([`rooms:${alice.id}`, `rooms:${alice.id}`, `rooms:${bob.id}`]);
  });

  it("with the real binding, a user creating rooms in a burst is cut off (429) while another user is not", async () => {
    const bob = await signup();
    // The local limiter counts in wall-clock windows of the period; a burst that straddles a window
    // boundary is split between two budgets, so it is run again (once) with a fresh user.
    const windowOf = () => Math.floor(Date.now() / (limits.chatRoomWritesPeriodSec * 1000));
    for (let attempt = 0; ; attempt++) {
      const alice = await signup();
      const window = windowOf();
      let created = 0;
      let limited: Awaited<ReturnType<typeof api>> | undefined;
      // wrangler.toml: ROOMS_LIMITER allows 30 per 60 s.
      for (let i = 0; i < 36 && !limited; i++) {
        const res = await api("/v1/rooms", { token: alice.accessToken, body: { memberIds: [] } });
        if (res.status === 429) limited = res;
        else {
          expect(res.status).toBe(201);
          created++;
        }
      }
      if (windowOf() !== window && attempt === 0) continue;
      expect(limited, "no 429 within 36 room creations").toBeDefined();
      expectProblem(limited!, 429, "rate_limited");
      expect(created).toBe(30);
      expect((await api("/v1/rooms", { token: bob.accessToken, body: { memberIds: [] } })).status).toBe(201);
      return;
    }
  });
});

describe("daily cap on distinct people a user adds to rooms", () => {
  // Retry-After runs to the end of the UTC day.
  it("a group past the cap → 429 rate_limited until the UTC day ends; within it → 201", async () => {
    const [alice, bob, carol] = [await signup(), await signup(), await signup()];
    await alreadyAdded(alice, limits.chatNewPeoplePerDay - 1);
    const res = await api("/v1/rooms", {
      token: alice.accessToken,
      body: { name: "too many", memberIds: [bob.id, carol.id] },
    });
    expectProblem(res, 429, "rate_limited");
    const retry = Number(res.headers.get("retry-after"));
    expect(retry).toBeGreaterThan(0);
    expect(Math.abs(retry - secondsToMidnight())).toBeLessThanOrEqual(5);
    expect((await api("/v1/rooms", { token: alice.accessToken })).body.items).toEqual([]);
    // One more person fits.
    expect(
      (await api("/v1/rooms", { token: alice.accessToken, body: { name: "fits", memberIds: [bob.id] } })).status,
    ).toBe(201);
  });

  it("people added today count once; a new one is refused in a group, by add or direct room", async () => {
    const [alice, bob, carol] = [await signup(), await signup(), await signup()];
    await alreadyAdded(alice, limits.chatNewPeoplePerDay - 1);
    const room = await createGroup(alice, [bob], "first");
    // Bob again, in another group and in a direct room: no new person.
    await createGroup(alice, [bob], "second");
    expect(
      (await api("/v1/rooms", { token: alice.accessToken, body: { kind: "direct", memberIds: [bob.id] } })).status,
    ).toBe(201);
    // Carol would be the cap + 1st person today.
    const added = await api(`/v1/rooms/${room.id}/members`, { token: alice.accessToken, body: { userId: carol.id } });
    expectProblem(added, 429, "rate_limited");
    expect(Number(added.headers.get("retry-after"))).toBeGreaterThan(0);
    expectProblem(
      await api("/v1/rooms", { token: alice.accessToken, body: { kind: "direct", memberIds: [carol.id] } }),
      429,
      "rate_limited",
    );
    expect((await api("/v1/rooms", { token: carol.accessToken })).body.items).toEqual([]);
    // Carol herself is not capped by Alice's adds: she can open a room with Alice.
    expect(
      (await api("/v1/rooms", { token: carol.accessToken, body: { kind: "direct", memberIds: [alice.id] } })).status,
    ).toBe(201);
  });

  // A room created with no one else, rejoining a room, and reopening a direct room.
  it("rooms that add nobody new are not capped", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const group = await createGroup(alice, [bob]);
    const dm = await api<RoomBody>("/v1/rooms", {
      token: alice.accessToken,
      body: { kind: "direct", memberIds: [bob.id] },
    });
    expect((await api(`/v1/rooms/${group.id}/members/me`, { method: "DELETE", token: alice.accessToken })).status).toBe(
      204,
    );
    expect(
      (await api(`/v1/rooms/${dm.body.id}/members/me`, { method: "DELETE", token: alice.accessToken })).status,
    ).toBe(204);
    await alreadyAdded(alice, limits.chatNewPeoplePerDay);
    expect((await api("/v1/rooms", { token: alice.accessToken, body: { memberIds: [] } })).status).toBe(201);
    expect(
      (await api(`/v1/rooms/${group.id}/members`, { token: alice.accessToken, body: { userId: "me" } })).status,
    ).toBe(201);
    expect(
      (await api("/v1/rooms", { token: alice.accessToken, body: { kind: "direct", memberIds: [bob.id] } })).status,
    ).toBe(200);
  });

  it("guests have a smaller cap: a guest cannot pull in more than chatNewPeoplePerDayGuest people a day", async () => {
    const g = await guest();
    const people = await Promise.all(Array.from({ length: limits.chatNewPeoplePerDayGuest + 1 }, () => guest()));
    const over = await api("/v1/rooms", {
      token: g.accessToken,
      body: { name: "spam", memberIds: people.map((p) => p.id) },
    });
    expectProblem(over, 429, "rate_limited");
    const fits = await api<RoomBody>("/v1/rooms", {
      token: g.accessToken,
      body: { name: "ok", memberIds: people.slice(1).map((p) => p.id) },
    });
    expect(fits.status).toBe(201);
    expect(fits.body.members).toHaveLength(limits.chatNewPeoplePerDayGuest + 1);
  });

  it("counts from earlier days are dropped when the user adds people again", async () => {
    const [alice, bob] = [await signup(), await signup()];
    await alreadyAdded(alice, 3, "2000-01-01");
    await createGroup(alice, [bob]);
    const rows = await env.DB.prepare("SELECT day, added_id FROM room_adds WHERE adder_id = ?")
      .bind(alice.id)
      .all<{ day: string; added_id: string }>();
    expect(rows.results).toEqual([{ day: today(), added_id: bob.id }]);
  });
});

/**
 * `?count=true` on a list (API.md "Relations, counts and search"): `total` is every record the
 * caller may list that matches `where`, whatever the page size: the number of items paged through.
 */
import { describe, expect, it } from "vitest";
import { api, expectProblem, serviceKey, signup } from "../../helpers/api";
import { createTeam, listIn, memberAs } from "../teams/helpers";
import { createNote, list } from "./helpers";

/** Pages through a list and returns every id and the `total` of each page. */
async function pageThrough(name: string, token: string, params: Record<string, string | object>) {
  const ids: string[] = [];
  const totals: number[] = [];
  let cursor: string | null = null;
  do {
    const res = await list(name, token, { ...params, count: "true", limit: "3", ...(cursor ? { cursor } : {}) });
    expect(res.status, res.text).toBe(200);
    ids.push(...res.body.items.map((x: { id: string }) => x.id));
    totals.push(res.body.total);
    cursor = res.body.nextCursor;
  } while (cursor);
  return { ids, totals };
}

describe("?count=true", () => {
  it("an owner's notes, with and without where: total is what paging finds, on every page", async () => {
    const user = await signup();
    const other = await signup();
    for (let i = 0; i < 8; i++) await createNote(user, { title: `n${i}`, pinned: i % 3 === 0 });
    await createNote(other, { title: "not theirs", pinned: true });
    const all = await pageThrough("notes", user.accessToken, {});
    expect(all.ids).toHaveLength(8);
    expect(new Set(all.totals)).toEqual(new Set([8]));
    const pinned = await pageThrough("notes", user.accessToken, { where: { pinned: true } });
    expect(pinned.ids).toHaveLength(3);
    expect(new Set(pinned.totals)).toEqual(new Set([3]));
    // Without count: no total.
    const plain = await list("notes", user.accessToken);
    expect(plain.body).not.toHaveProperty("total");
  });

  it("a team-scoped list counts the caller's teams only, or one team; a stranger's count of a team is 404", async () => {
    const owner = await signup();
    const [a, b] = [await createTeam(owner, "A"), await createTeam(owner, "B")];
    const viewer = await memberAs(owner, a.id, "viewer");
    for (const [teamId, n] of [
      [a.id, 4],
      [b.id, 2],
    ] as const)
      for (let i = 0; i < n; i++) {
        const res = await api("/v1/collections/items/records", {
          token: owner.accessToken,
          body: { teamId, listId: await listIn(teamId), text: `t${i}` },
        });
        expect(res.status).toBe(201);
      }
    expect((await pageThrough("items", owner.accessToken, {})).totals[0]).toBe(6);
    expect((await pageThrough("items", viewer.accessToken, {})).totals[0]).toBe(4);
    expect((await pageThrough("items", owner.accessToken, { where: { teamId: b.id } })).totals[0]).toBe(2);
    const stranger = await signup();
    expectProblem(
      await list("items", stranger.accessToken, { where: { teamId: a.id }, count: "true" }),
      404,
      "not_found",
    );
  });

  it("public posts: the service key and anyone count the same; a bad count value is a 400", async () => {
    const user = await signup();
    const where = { ownerId: user.id };
    for (let i = 0; i < 5; i++)
      await api("/v1/collections/posts/records", { token: user.accessToken, body: { text: `p${i}` } });
    const anonymous = await list("posts", null, { where, count: "true" });
    expect(anonymous.body.total).toBe(5);
    expect((await list("posts", serviceKey(), { where, count: "true" })).body.total).toBe(5);
    expectProblem(await list("posts", user.accessToken, { count: "yes" }), 400, "validation_failed");
  });
});

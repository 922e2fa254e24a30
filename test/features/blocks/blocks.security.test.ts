import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, expectProblem, serviceKey, signup } from "../../helpers/api";
import { block, listBlocks, unblock } from "./helpers";

describe("blocks: security", () => {
  it("every blocks route refuses a missing, garbage, unsigned or tampered token with 401", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const [h, c, s] = alice.accessToken.split(".");
    const tampered = [
      null,
      "garbage",
      "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
      // Alice's token with Bob's id swapped into the claims, signature unchanged.
      `${h}.${btoa(atob(c!.replaceAll("-", "+").replaceAll("_", "/")).replace(alice.id, bob.id))
        .replace(/=+$/, "")
        .replaceAll("+", "-")
        .replaceAll("/", "_")}.${s}`,
      `${alice.accessToken}x`,
    ];
    for (const token of tampered) {
      expectProblem(await api("/v1/blocks", { token, body: { userId: bob.id } }), 401, "unauthorized");
      expectProblem(await api("/v1/blocks", { token }), 401, "unauthorized");
      expectProblem(await api(`/v1/blocks/${bob.id}`, { method: "DELETE", token }), 401, "unauthorized");
    }
    expect((await listBlocks(alice)).body.items).toEqual([]);
  });

  it("the service key is not a user: 403 on every blocks route", async () => {
    const bob = await signup();
    expectProblem(await api("/v1/blocks", { token: serviceKey(), body: { userId: bob.id } }), 403, "forbidden");
    expectProblem(await api("/v1/blocks", { token: serviceKey() }), 403, "forbidden");
    expectProblem(await api(`/v1/blocks/${bob.id}`, { method: "DELETE", token: serviceKey() }), 403, "forbidden");
  });

  // Neither a stranger nor the blocked user can lift one.
  it("DELETE /v1/blocks/:userId acts only on the caller's own blocks", async () => {
    const [alice, carol, mallory] = [await signup(), await signup(), await signup()];
    await block(alice, carol.id);
    // Mallory names Carol (the user Alice blocked): Mallory has no such block.
    expectProblem(await unblock(mallory, carol.id), 404, "not_found");
    // Carol, the blocked user, tries to lift Alice's block by naming Alice.
    expectProblem(await unblock(carol, alice.id), 404, "not_found");
    expect((await listBlocks(alice)).body.items.map((b) => b.userId)).toEqual([carol.id]);
  });

  // A cursor from another user's list reveals nothing of theirs.
  it("GET /v1/blocks shows only the caller's blocks", async () => {
    const [alice, bob, carol, dave] = [await signup(), await signup(), await signup(), await signup()];
    await block(alice, carol.id);
    await block(alice, dave.id);
    await block(bob, carol.id);
    const alicePage = await listBlocks(alice, "?limit=1");
    expect(alicePage.body.items.map((b) => b.userId)).toEqual([dave.id]);
    const bobWithAliceCursor = await listBlocks(bob, `?limit=1&cursor=${alicePage.body.nextCursor}`);
    expect(bobWithAliceCursor.status).toBe(200);
    expect(bobWithAliceCursor.body.items.every((b) => b.userId !== dave.id)).toBe(true);
    expect((await listBlocks(bob)).body.items.map((b) => b.userId)).toEqual([carol.id]);
  });

  it("a token that outlived its account cannot block anyone (4xx, nothing stored)", async () => {
    const [zombie, bob] = [await signup(), await signup()];
    expect((await api("/v1/me", { method: "DELETE", token: zombie.accessToken })).status).toBe(204);
    const res = await block(zombie, bob.id);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM blocks WHERE blocker_id = ?")
      .bind(zombie.id)
      .first<{ n: number }>();
    expect(rows?.n).toBe(0);
  });
});

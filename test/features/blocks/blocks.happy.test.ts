import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, signup } from "../../helpers/api";
import { block, listBlocks, unblock } from "./helpers";

describe("blocks: happy paths", () => {
  it("POST /v1/blocks blocks a user (201); blocking again answers 200 with the same block", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const first = await block(alice, bob.id);
    expect(first.status, first.text).toBe(201);
    expect(first.body).toEqual({ userId: bob.id, createdAt: expect.any(String) });
    expect(Date.parse(first.body.createdAt)).not.toBeNaN();
    const again = await block(alice, bob.id);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM blocks WHERE blocker_id = ?")
      .bind(alice.id)
      .first<{ n: number }>();
    expect(rows?.n).toBe(1);
  });

  it("GET /v1/blocks lists the caller's blocks, newest first, paginated; DELETE unblocks (204)", async () => {
    const alice = await signup();
    const others = [await signup(), await signup(), await signup()];
    for (const o of others) expect((await block(alice, o.id)).status).toBe(201);
    const page1 = await listBlocks(alice, "?limit=2");
    expect(page1.status).toBe(200);
    expect(page1.body.items.map((b) => b.userId)).toEqual([others[2]!.id, others[1]!.id]);
    expect(page1.body.nextCursor).toEqual(expect.any(String));
    const page2 = await listBlocks(alice, `?limit=2&cursor=${page1.body.nextCursor}`);
    expect(page2.body).toEqual({ items: [{ userId: others[0]!.id, createdAt: expect.any(String) }], nextCursor: null });

    const del = await unblock(alice, others[1]!.id);
    expect(del.status).toBe(204);
    expect(del.text).toBe("");
    expect((await listBlocks(alice)).body.items.map((b) => b.userId)).toEqual([others[2]!.id, others[0]!.id]);
    // Blocking again after an unblock is a new block.
    expect((await block(alice, others[1]!.id)).status).toBe(201);
  });

  it("blocks are one-way: the blocked user's own list stays empty", async () => {
    const [alice, bob] = [await signup(), await signup()];
    await block(alice, bob.id);
    expect((await listBlocks(bob)).body).toEqual({ items: [], nextCursor: null });
  });

  it("deleting an account removes the blocks it made and the blocks made of it", async () => {
    const [alice, bob, carol] = [await signup(), await signup(), await signup()];
    await block(alice, bob.id);
    await block(carol, alice.id);
    await block(carol, bob.id);
    expect((await api("/v1/me", { method: "DELETE", token: alice.accessToken })).status).toBe(204);
    const left = await env.DB.prepare(
      "SELECT blocker_id, blocked_id FROM blocks WHERE blocker_id IN (?, ?, ?) OR blocked_id IN (?, ?, ?)",
    )
      .bind(alice.id, bob.id, carol.id, alice.id, bob.id, carol.id)
      .all<{ blocker_id: string; blocked_id: string }>();
    expect(left.results).toEqual([{ blocker_id: carol.id, blocked_id: bob.id }]);
    expect((await listBlocks(carol)).body.items.map((b) => b.userId)).toEqual([bob.id]);
  });
});

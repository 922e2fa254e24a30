import { describe, expect, it } from "vitest";
import { api, expectProblem, signup } from "../../helpers/api";
import { block, listBlocks, unblock } from "./helpers";

describe("blocks: errors", () => {
  it("blocking yourself is a 400 on userId", async () => {
    const alice = await signup();
    const p = expectProblem(await block(alice, alice.id), 400, "validation_failed");
    expect(p.errors).toEqual([{ path: "userId", message: expect.any(String) }]);
    expect((await listBlocks(alice)).body.items).toEqual([]);
  });

  it("blocking a user that does not exist is a 404 and stores nothing", async () => {
    const alice = await signup();
    expectProblem(await block(alice, "0190aaaa-0000-7000-8000-000000000000"), 404, "not_found");
    expect((await listBlocks(alice)).body.items).toEqual([]);
  });

  it("POST /v1/blocks rejects a missing, wrong-typed or extra field", async () => {
    const [alice, bob] = [await signup(), await signup()];
    const t = alice.accessToken;
    expectProblem(await api("/v1/blocks", { token: t, body: {} }), 400, "validation_failed");
    expectProblem(await api("/v1/blocks", { token: t, body: { userId: 42 } }), 400, "validation_failed");
    expectProblem(await api("/v1/blocks", { token: t, body: { userId: "" } }), 400, "validation_failed");
    expectProblem(await api("/v1/blocks", { token: t, body: { userId: "x".repeat(65) } }), 400, "validation_failed");
    expectProblem(
      await api("/v1/blocks", { token: t, body: { userId: bob.id, reason: "spam" } }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api("/v1/blocks", {
        token: t,
        raw: `userId=${bob.id}`,
        headers: { "content-type": "application/x-www-form-urlencoded" },
      }),
      415,
      "unsupported_media_type",
    );
    expect((await listBlocks(alice)).body.items).toEqual([]);
  });

  it("DELETE /v1/blocks/:userId of a user the caller has not blocked is a 404", async () => {
    const [alice, bob] = [await signup(), await signup()];
    expectProblem(await unblock(alice, bob.id), 404, "not_found");
    await block(alice, bob.id);
    expect((await unblock(alice, bob.id)).status).toBe(204);
    expectProblem(await unblock(alice, bob.id), 404, "not_found");
    expectProblem(await unblock(alice, "x".repeat(65)), 400, "validation_failed");
  });

  it("GET /v1/blocks rejects a forged cursor and an out-of-range limit", async () => {
    const alice = await signup();
    expectProblem(await listBlocks(alice, "?cursor=bm9wZQ"), 400, "validation_failed");
    expectProblem(await listBlocks(alice, "?limit=0"), 400, "validation_failed");
    expectProblem(await listBlocks(alice, "?limit=201"), 400, "validation_failed");
  });
});

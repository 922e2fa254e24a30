/**
 * `client.app` against the real Worker: the example app's POST /v1/app/lists/{id}/clear-done, with
 * the SDK's session (an expired token refreshed once), typed errors, and an Idempotency-Key per call.
 */
import { describe, expect, it } from "vitest";
import { OutpostError } from "../src/index.js";
import { codeMailedTo, expiredCopy, signedIn, type TestClient, verified } from "./helpers.js";

type Item = { id: string };

async function teamList(owner: TestClient, ...members: [TestClient, "member" | "viewer"][]) {
  const team = await owner.teams.create("Shopping");
  for (const [m, role] of members) {
    await owner.teams.invite(team.id, m.user!.email!, role);
    await m.teams.join(await codeMailedTo(m.user!.email!));
  }
  const list = await owner.request<{ id: string }>("/v1/collections/lists/records", {
    method: "POST",
    body: { teamId: team.id, title: "Groceries" },
  });
  const item = (text: string, done: boolean) =>
    owner.request<Item>("/v1/collections/items/records", {
      method: "POST",
      body: { teamId: team.id, listId: list.id, text, done },
    });
  return { team, list, item };
}

const itemsOf = async (c: TestClient, listId: string) =>
  (
    await c.request<{ items: Item[] }>("/v1/collections/items/records", {
      query: { where: JSON.stringify({ listId }) },
    })
  ).items.map((x) => x.id);

describe("client.app: the app's own routes", () => {
  it("a member clears a list's done items; the call carries an Idempotency-Key", async () => {
    const owner = await signedIn();
    const bob = await verified();
    const { list, item } = await teamList(owner, [bob, "member"]);
    await item("milk", true);
    await item("bread", true);
    const open = await item("eggs", false);

    bob.net.log.length = 0;
    const res = await bob.app.post("/lists/{id}/clear-done", { params: { id: list.id } });
    expect(res).toEqual({ deleted: 2 });
    const sent = bob.net.log.find((e) => e.path === `/v1/app/lists/${list.id}/clear-done`);
    expect(sent).toMatchObject({ method: "POST", status: 200 });
    expect(sent!.key).toMatch(/^[0-9a-f-]{36}$/);
    expect(await itemsOf(owner, list.id)).toEqual([open.id]);
    owner.close();
    bob.close();
  });

  it("a retry with the same idempotencyKey gets the first answer", async () => {
    const owner = await signedIn();
    const { list, item } = await teamList(owner);
    await item("milk", true);
    const first = await owner.app.post("/lists/{id}/clear-done", { params: { id: list.id }, idempotencyKey: "k-1" });
    await item("bread", true);
    const again = await owner.app.post("/lists/{id}/clear-done", { params: { id: list.id }, idempotencyKey: "k-1" });
    expect([first, again]).toEqual([{ deleted: 1 }, { deleted: 1 }]);
    expect(await itemsOf(owner, list.id)).toHaveLength(1);
    owner.close();
  });

  it("refreshes an access token the server finds expired, once, and retries", async () => {
    const owner = await signedIn();
    const { list, item } = await teamList(owner);
    await item("milk", true);
    const s = owner.auth.session!;
    owner.auth.session = { ...s, accessToken: await expiredCopy(s.accessToken) };
    owner.net.log.length = 0;
    expect(await owner.app.post("/lists/{id}/clear-done", { params: { id: list.id } })).toEqual({ deleted: 1 });
    expect(owner.net.count("POST", "/v1/auth/refresh")).toBe(1);
    expect(owner.net.count("POST", `/v1/app/lists/${list.id}/clear-done`)).toBe(2);
    owner.close();
  });

  it("errors are OutpostErrors: a viewer 403 forbidden, a stranger 404 not_found; a missing param throws", async () => {
    const owner = await signedIn();
    const viewer = await verified();
    const stranger = await signedIn();
    const { list, item } = await teamList(owner, [viewer, "viewer"]);
    await item("milk", true);
    const refused = (c: TestClient) =>
      c.app.post("/lists/{id}/clear-done", { params: { id: list.id } }).then(
        () => null,
        (e: unknown) => e,
      );
    const asViewer = await refused(viewer);
    expect(asViewer).toBeInstanceOf(OutpostError);
    expect(asViewer).toMatchObject({ status: 403, code: "forbidden" });
    expect(await refused(stranger)).toMatchObject({ status: 404, code: "not_found" });
    expect(() => owner.app.post("/lists/{id}/clear-done", { params: {} })).toThrow(/params\.id/);
    expect(await itemsOf(owner, list.id)).toHaveLength(1);
    for (const c of [owner, viewer, stranger]) c.close();
  });
});

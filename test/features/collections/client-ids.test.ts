/**
 * Issue 13.2: create accepts a client-made UUID `id`, so an app can create records offline, link
 * them, and retry safely: the same id again from the same owner with the same fields → 200 with the
 * stored record; an id that exists otherwise → 409 `conflict`.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { changed, snapshot } from "../../fuzz/support";
import { api, expectProblem, serviceKey, signup } from "../../helpers/api";
import { base } from "./helpers";

const notes = `${base("notes")}/records`;
const posts = `${base("posts")}/records`;
const logRows = async (id: string) =>
  (await env.DB.prepare("SELECT seq, version, deleted FROM record_changes WHERE record_id = ?").bind(id).all()).results;

describe("create with a client id", () => {
  it("201 with that id; the same request again → 200 with the stored record, nothing written", async () => {
    const user = await signup();
    const id = crypto.randomUUID();
    const first = await api(notes, { token: user.accessToken, body: { id, title: "offline" } });
    expect(first.status, first.text).toBe(201);
    expect(first.body).toMatchObject({
      id,
      title: "offline",
      body: "",
      pinned: false,
      tags: [],
      version: 1,
      ownerId: user.id,
    });
    expect(first.headers.get("location")).toBe(`/v1/collections/notes/records/${id}`);
    const log = await logRows(id);
    const before = await snapshot();
    // The retry: same fields (defaults spelled out or not).
    const again = await api(notes, { token: user.accessToken, body: { id, title: "offline", body: "", tags: [] } });
    expect(again.status, again.text).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get("etag")).toBe('"1"');
    expect(changed(before, await snapshot())).toEqual([]);
    expect(await logRows(id)).toEqual(log);
  });

  it("a reused id with other fields, by another user or of a deleted record → 409, no write", async () => {
    const [me, other] = [await signup(), await signup()];
    const id = crypto.randomUUID();
    expect((await api(notes, { token: me.accessToken, body: { id, title: "mine" } })).status).toBe(201);
    const before = await snapshot();
    expectProblem(await api(notes, { token: me.accessToken, body: { id, title: "changed" } }), 409, "conflict");
    const stolen = await api(notes, { token: other.accessToken, body: { id, title: "mine" } });
    expectProblem(stolen, 409, "conflict");
    expect(stolen.text).not.toContain(me.id);
    expect(changed(before, await snapshot())).toEqual([]);

    // A record that was changed since: its create is no longer "the same request".
    expect(
      (await api(`${notes}/${id}`, { method: "PATCH", token: me.accessToken, body: { pinned: true } })).status,
    ).toBe(200);
    expectProblem(await api(notes, { token: me.accessToken, body: { id, title: "mine" } }), 409, "conflict");

    // A deleted id is never reused (its tombstone is in the change feed).
    expect((await api(`${notes}/${id}`, { method: "DELETE", token: me.accessToken })).status).toBe(204);
    expectProblem(
      await api(notes, { token: me.accessToken, body: { id, title: "mine", pinned: true } }),
      409,
      "conflict",
    );
    expect((await api(`${notes}/${id}`, { token: me.accessToken })).status).toBe(404);
  });

  // Any UUID version with the RFC variant is accepted.
  it("ids are UUIDs in any case, stored lowercase; anything else is a 400 on `id`", async () => {
    const user = await signup();
    const upper = crypto.randomUUID().toUpperCase();
    const res = await api(notes, { token: user.accessToken, body: { id: upper, title: "caps" } });
    expect(res.status, res.text).toBe(201);
    expect(res.body.id).toBe(upper.toLowerCase());
    expect(
      (await api(notes, { token: user.accessToken, body: { id: upper.toLowerCase(), title: "caps" } })).status,
    ).toBe(200);
    const v7 = "01900000-0000-7000-8000-0000000000aa";
    expect((await api(notes, { token: user.accessToken, body: { id: v7, title: "v7" } })).status).toBe(201);
    for (const bad of [
      "",
      "x",
      "not-a-uuid",
      "00000000-0000-0000-0000-000000000000",
      "01900000-0000-7000-c000-000000000000",
      "01900000-0000-9000-8000-000000000000",
      `${crypto.randomUUID()}0`,
      "{01900000-0000-7000-8000-000000000000}",
      42,
      null,
    ]) {
      const r = await api(notes, { token: user.accessToken, body: { id: bad, title: "bad" } });
      expect(expectProblem(r, 400, "validation_failed").errors?.[0]?.path, JSON.stringify(bad)).toBe("id");
    }
    // PUT and PATCH never take an id from the body.
    const id = res.body.id;
    expectProblem(
      await api(`${notes}/${id}`, { method: "PATCH", token: user.accessToken, body: { id: crypto.randomUUID() } }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api(`${notes}/${id}`, { method: "PUT", token: user.accessToken, body: { id, title: "x" } }),
      400,
      "validation_failed",
    );
  });

  it("an id is per collection; the service key's records (no owner) retry like any other", async () => {
    const user = await signup();
    const id = crypto.randomUUID();
    expect((await api(notes, { token: user.accessToken, body: { id, title: "note" } })).status).toBe(201);
    expect((await api(posts, { token: user.accessToken, body: { id, text: "post" } })).status).toBe(201);
    const sid = crypto.randomUUID();
    const made = await api(notes, { token: serviceKey(), body: { id: sid, title: "system" } });
    expect(made.status).toBe(201);
    expect(made.body.ownerId).toBeNull();
    expect((await api(notes, { token: serviceKey(), body: { id: sid, title: "system" } })).status).toBe(200);
    // A user cannot claim the service's record.
    expectProblem(await api(notes, { token: user.accessToken, body: { id: sid, title: "system" } }), 409, "conflict");
  });

  it("works with Idempotency-Key, and the record is readable and listable under its id", async () => {
    const user = await signup();
    const id = crypto.randomUUID();
    const headers = { "idempotency-key": `create-${id}` };
    const first = await api(notes, { token: user.accessToken, body: { id, title: "k" }, headers });
    const again = await api(notes, { token: user.accessToken, body: { id, title: "k" }, headers });
    expect([first.status, again.status]).toEqual([201, 201]);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect((await api(`${notes}/${id}`, { token: user.accessToken })).body).toEqual(first.body);
    const feed = await api(`${base("notes")}/changes`, { token: user.accessToken });
    expect(feed.body.items).toEqual([first.body]);
  });
});

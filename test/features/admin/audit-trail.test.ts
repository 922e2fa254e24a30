/**
 * Issue 23.4: the audit log is complete. Console sign-in and sign-out, console views of private
 * data (a private file's bytes, a room's history, owner-only records) and the service key's writes
 * through ordinary routes leave a row; a D1 write's row rides in the write's own batch (a refused
 * audit insert leaves the write undone); the request id is the server's, a client's X-Request-Id is
 * kept apart as `clientRequestId`.
 */
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { api, serviceKey, signup, type TestUser } from "../../helpers/api";
import { createGroup, sendRest } from "../chat/helpers";
import { createNote } from "../collections/helpers";
import { signIn, visit } from "./console-helpers";
import { signupAdmin } from "./helpers";

interface Row {
  actor_id: string;
  action: string;
  target: string;
  request_id: string;
  client_request_id: string | null;
  detail: string | null;
}

/** The audit rows of a target (oldest first), read from D1. */
async function rowsOf(target: string): Promise<Row[]> {
  const r = await env.DB.prepare("SELECT * FROM audit_log WHERE target = ? ORDER BY id").bind(target).all<Row>();
  return r.results;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const PNG = Uint8Array.from(
  atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="),
  (ch) => ch.charCodeAt(0),
);

async function uploadPrivate(u: TestUser) {
  const res = await api("/v1/files?name=dot.png&visibility=private", {
    token: u.accessToken,
    raw: PNG,
    headers: { "content-type": "image/png" },
  });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string };
}

let admin: TestUser;
beforeAll(async () => {
  admin = await signupAdmin();
});

describe("console: sign-in, sign-out and views of private data", () => {
  it("signing in and signing out each leave a row", async () => {
    const other = await signupAdmin();
    const { b, csrf } = await signIn(other);
    expect((await visit(b, "/admin/logout", { _csrf: csrf })).status).toBe(303);
    const rows = await rowsOf(`user:${other.id}`);
    expect(rows.map((r) => [r.actor_id, r.action])).toEqual([
      [other.id, "console.sign_in"],
      [other.id, "console.sign_out"],
    ]);
    expect(rows[0]!.request_id).toMatch(UUID);
  });

  it("a refused sign-in leaves no row", async () => {
    const other = await signupAdmin();
    const b = { cookies: new Map<string, string>() };
    const login = await visit(b, "/admin/login");
    const csrf = /name="_csrf" value="([^"]+)"/.exec(login.html)![1]!;
    expect((await visit(b, "/admin/login", { _csrf: csrf, email: other.email, password: "wrong" })).status).toBe(401);
    expect(await rowsOf(`user:${other.id}`)).toEqual([]);
  });

  it("viewing a private file's content (inline or download) leaves a row per view", async () => {
    const u = await signup();
    const file = await uploadPrivate(u);
    const { b } = await signIn(admin);
    expect((await visit(b, `/admin/files/${file.id}/content`)).status).toBe(200);
    expect((await visit(b, `/admin/files/${file.id}/content?download=1`)).status).toBe(200);
    const rows = await rowsOf(`file:${file.id}`);
    expect(rows.map((r) => [r.actor_id, r.action, JSON.parse(r.detail!).download])).toEqual([
      [admin.id, "file.view", false],
      [admin.id, "file.view", true],
    ]);
  });

  it("viewing a room's history leaves a row", async () => {
    const [owner, member] = [await signup(), await signup()];
    const room = await createGroup(owner, [member]);
    await sendRest(owner, room.id, "private words");
    const { b } = await signIn(admin);
    const page = await visit(b, `/admin/rooms/${room.id}`);
    expect(page.status).toBe(200);
    expect(page.html).toContain("private words");
    const rows = await rowsOf(`room:${room.id}`);
    expect(rows.map((r) => [r.actor_id, r.action])).toEqual([[admin.id, "room.history_view"]]);
  });

  it("viewing an owner-only record, or the list of such records, leaves a row; public ones do not", async () => {
    const u = await signup();
    const note = await createNote(u, { title: "my secret" });
    const { b } = await signIn(admin);
    expect((await visit(b, `/admin/collections/notes/${note.id}`)).status).toBe(200);
    expect((await rowsOf(`notes:${note.id}`)).map((r) => [r.actor_id, r.action])).toEqual([[admin.id, "record.view"]]);
    const before = (await rowsOf("collection:notes")).length;
    expect((await visit(b, "/admin/collections/notes")).status).toBe(200);
    const listed = await rowsOf("collection:notes");
    expect(listed).toHaveLength(before + 1);
    expect(listed.at(-1)).toMatchObject({ actor_id: admin.id, action: "records.view" });

    const post = await api("/v1/collections/posts/records", { token: u.accessToken, body: { text: "public" } });
    expect((await visit(b, `/admin/collections/posts/${post.body.id}`)).status).toBe(200);
    expect((await visit(b, "/admin/collections/posts")).status).toBe(200);
    expect(await rowsOf(`posts:${post.body.id}`)).toEqual([]);
    expect(await rowsOf("collection:posts")).toEqual([]);
  });
});

describe("the service key on ordinary routes", () => {
  afterEach(async () => {
    await env.DB.prepare("DROP TRIGGER IF EXISTS refuse_audit").run();
  });

  it("creates, updates and deletes of records leave a row each; a user's writes leave none", async () => {
    const created = await api("/v1/collections/posts/records", {
      token: serviceKey(),
      body: { text: "from a server" },
    });
    expect(created.status).toBe(201);
    const target = `posts:${created.body.id}`;
    const patched = await api(`/v1/collections/posts/records/${created.body.id}`, {
      method: "PATCH",
      token: serviceKey(),
      body: { text: "changed" },
    });
    expect(patched.status).toBe(200);
    expect(
      (await api(`/v1/collections/posts/records/${created.body.id}`, { method: "DELETE", token: serviceKey() })).status,
    ).toBe(204);
    const rows = await rowsOf(target);
    expect(rows.map((r) => [r.actor_id, r.action])).toEqual([
      ["service", "record.create"],
      ["service", "record.update"],
      ["service", "record.delete"],
    ]);
    expect(JSON.parse(rows[1]!.detail!)).toEqual({ fields: ["text"] });

    const u = await signup();
    const mine = await createNote(u);
    expect(await rowsOf(`notes:${mine.id}`)).toEqual([]);
  });

  it("a write that matches nothing (404) leaves no row", async () => {
    const missing = "01900000-0000-7000-8000-0000000000aa";
    const res = await api(`/v1/collections/posts/records/${missing}`, { method: "DELETE", token: serviceKey() });
    expect(res.status).toBe(404);
    expect(await rowsOf(`posts:${missing}`)).toEqual([]);
  });

  it("the audit row rides in the write's batch: when it cannot be written, neither is the record", async () => {
    const u = await signup();
    const note = await createNote(u, { title: "untouched" });
    await env.DB.prepare(
      `CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log WHEN NEW.target = 'notes:${note.id}' ` +
        "BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
    ).run();
    const patched = await api(`/v1/collections/notes/records/${note.id}`, {
      method: "PATCH",
      token: serviceKey(),
      body: { title: "changed without a trace" },
    });
    expect(patched.status).toBe(500);
    const batch = await api("/v1/batch", {
      token: serviceKey(),
      body: { operations: [{ op: "delete", collection: "notes", id: note.id }] },
    });
    expect(batch.status).toBe(500);
    const deleted = await api(`/v1/collections/notes/records/${note.id}`, { method: "DELETE", token: serviceKey() });
    expect(deleted.status).toBe(500);
    const stored = await api(`/v1/collections/notes/records/${note.id}`, { token: u.accessToken });
    expect(stored.body).toMatchObject({ title: "untouched", version: 1 });
    const log = await env.DB.prepare("SELECT version FROM record_changes WHERE collection = 'notes' AND record_id = ?")
      .bind(note.id)
      .all<{ version: number }>();
    expect(log.results).toEqual([{ version: 1 }]);
  });

  it("a batch's operations leave a row each", async () => {
    const res = await api("/v1/batch", {
      token: serviceKey(),
      body: {
        operations: [
          { op: "create", collection: "posts", data: { text: "one" } },
          { op: "create", collection: "posts", data: { text: "two" } },
        ],
      },
    });
    expect(res.status, res.text).toBe(200);
    for (const r of res.body.results as { id: string }[])
      expect((await rowsOf(`posts:${r.id}`)).map((x) => [x.actor_id, x.action])).toEqual([
        ["service", "record.create"],
      ]);
  });

  it("deleting a user's file and minting a signed URL for it leave a row each", async () => {
    const u = await signup();
    const file = await uploadPrivate(u);
    const signed = await api(`/v1/files/${file.id}/signed-url`, { token: serviceKey(), body: { expiresIn: 60 } });
    expect(signed.status, signed.text).toBe(200);
    expect((await api(`/v1/files/${file.id}`, { method: "DELETE", token: serviceKey() })).status).toBe(204);
    expect((await rowsOf(`file:${file.id}`)).map((r) => [r.actor_id, r.action])).toEqual([
      ["service", "file.signed_url"],
      ["service", "file.delete"],
    ]);
  });
});

describe("request ids", () => {
  it("a client's X-Request-Id is echoed but not the request id; it is kept as clientRequestId", async () => {
    const created = await api("/v1/collections/posts/records", {
      token: serviceKey(),
      body: { text: "traced" },
      headers: { "x-request-id": "client-trace-42" },
    });
    expect(created.status).toBe(201);
    // The response echoes the client's id (the contract); the row's own id is the server's.
    expect(created.headers.get("x-request-id")).toBe("client-trace-42");
    const [row] = await rowsOf(`posts:${created.body.id}`);
    expect(row).toMatchObject({ request_id: expect.stringMatching(UUID), client_request_id: "client-trace-42" });

    const page = await api("/v1/admin/audit?limit=20", { token: serviceKey() });
    const entry = page.body.items.find((e: { target: string }) => e.target === `posts:${created.body.id}`);
    expect(entry).toMatchObject({ requestId: row!.request_id, clientRequestId: "client-trace-42" });
  });

  it("an invalid client id is dropped; an error's instance names the server's id", async () => {
    const created = await api("/v1/collections/posts/records", {
      token: serviceKey(),
      body: { text: "untraced" },
      headers: { "x-request-id": "not valid!" },
    });
    const [row] = await rowsOf(`posts:${created.body.id}`);
    expect(row!.client_request_id).toBeNull();
    const refused = await api("/v1/collections/nope/records", { headers: { "x-request-id": "mine" } });
    expect(refused.status).toBe(404);
    expect(refused.headers.get("x-request-id")).toBe("mine");
    expect(refused.body.instance).toMatch(/^urn:request:[0-9a-f-]{36}$/);
    const bare = await api("/v1/collections/nope/records");
    expect(bare.body.instance).toBe(`urn:request:${bare.headers.get("x-request-id")}`);
  });
});

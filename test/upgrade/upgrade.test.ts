/**
 * Upgrades lose nothing: this file's database is rebuilt at the first migration, filled with plain
 * SQL written for that first schema (users, sessions, an identity, records, files, a room with its
 * members, devices), then every later migration is applied the way `wrangler d1 migrations apply`
 * does, and the data is read back through the API.
 */
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { hashPassword, hashToken, randomToken } from "../../src/lib/crypto";
import { api } from "../helpers/api";
import { providerIdToken } from "../helpers/tokens";

const migrations = env.TEST_MIGRATIONS;
const columns = async (table: string) =>
  (await env.DB.prepare(`PRAGMA table_info("${table}")`).all<{ name: string }>()).results.map((c) => c.name);

/** Drops every table (storage is this file's own), so the database starts empty. */
async function wipe() {
  for (let round = 0; round < 10; round++) {
    const tables = (
      await env.DB.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'",
      ).all<{ name: string }>()
    ).results.map((t) => t.name);
    if (!tables.length) return;
    for (const t of tables)
      await env.DB.prepare(`DROP TABLE IF EXISTS "${t}"`)
        .run()
        .catch(() => undefined);
  }
  throw new Error("could not empty the database");
}

const now = new Date().toISOString();
const later = new Date(Date.now() + 30 * 86400_000).toISOString();
const user = {
  id: crypto.randomUUID(),
  email: `upgrade.${Date.now().toString(36)}@example.com`,
  password: "correct horse battery",
  name: "Ada Upgrade",
};
const friend = { id: crypto.randomUUID(), email: `friend.${Date.now().toString(36)}@example.com` };
const session = { id: crypto.randomUUID(), refresh: randomToken() };
const googleSub = `g-${crypto.randomUUID()}`;
const note = {
  id: crypto.randomUUID(),
  title: "Written before the upgrade",
  body: "still here",
  tags: ["old", "kept"],
};
const file = { id: crypto.randomUUID(), name: "before.txt", bytes: "bytes stored before the upgrade" };
const room = { id: crypto.randomUUID(), name: "Old friends" };
const lastMessage = {
  seq: 3,
  roomId: room.id,
  senderId: user.id,
  clientId: "c-3",
  text: "see you after",
  createdAt: now,
};
const device = { id: crypto.randomUUID(), token: `fcm-before-${crypto.randomUUID()}` };

/** An INSERT of `row` (column → value) into `table`. */
const insert = (table: string, row: Record<string, unknown>) =>
  env.DB.prepare(
    `INSERT INTO ${table} (${Object.keys(row).join(", ")}) VALUES (${Object.keys(row)
      .map(() => "?")
      .join(", ")})`,
  ).bind(...Object.values(row));

/** Rows as the first migration's schema has them (no column a later migration added). */
async function fillFirstSchema() {
  const pw = await hashPassword(user.password);
  const refreshHash = await hashToken(session.refresh);
  const stamps = { created_at: now, updated_at: now };
  await env.DB.batch([
    insert("users", {
      id: user.id,
      email: user.email,
      email_verified: 1,
      password_hash: pw,
      name: user.name,
      avatar_file_id: file.id,
      anonymous: 0,
      ...stamps,
    }),
    insert("users", { id: friend.id, email: friend.email, password_hash: pw, name: "Friend", anonymous: 0, ...stamps }),
    insert("sessions", {
      id: session.id,
      user_id: user.id,
      refresh_hash: refreshHash,
      user_agent: "old-app/1.0",
      created_at: now,
      last_used_at: now,
      expires_at: later,
    }),
    insert("refresh_tokens", { hash: refreshHash, session_id: session.id, created_at: now }),
    insert("identities", {
      provider: "google",
      subject: googleSub,
      user_id: user.id,
      email: user.email,
      created_at: now,
    }),
    insert("app_notes", {
      id: note.id,
      owner_id: user.id,
      version: 2,
      title: note.title,
      body: note.body,
      pinned: 1,
      tags: JSON.stringify(note.tags),
      ...stamps,
    }),
    insert("record_changes", {
      collection: "notes",
      record_id: note.id,
      owner_id: user.id,
      version: 2,
      deleted: 0,
      changed_at: now,
    }),
    insert("files", {
      id: file.id,
      owner_id: user.id,
      object_key: `f/${file.id}`,
      name: file.name,
      content_type: "text/plain",
      size: file.bytes.length,
      visibility: "private",
      status: "ready",
      created_at: now,
    }),
    insert("rooms", {
      id: room.id,
      kind: "group",
      name: room.name,
      created_by: user.id,
      created_at: now,
      last_seq: 3,
      last_message: JSON.stringify(lastMessage),
      last_activity_at: now,
    }),
    insert("room_members", { room_id: room.id, user_id: user.id, role: "owner", last_read_seq: 3, joined_at: now }),
    insert("room_members", { room_id: room.id, user_id: friend.id, role: "member", last_read_seq: 1, joined_at: now }),
    insert("devices", {
      id: device.id,
      user_id: user.id,
      token: device.token,
      platform: "android",
      provider: "fcm",
      ...stamps,
    }),
  ]);
  await env.MEDIA.put(`f/${file.id}`, file.bytes, { httpMetadata: { contentType: "text/plain" } });
}

let token = "";

beforeAll(async () => {
  await wipe();
  await applyD1Migrations(env.DB, migrations.slice(0, 1));
  // Really the first schema: a column the 0004 migration adds is not there yet.
  expect(await columns("users")).not.toContain("role");
  await fillFirstSchema();
  await applyD1Migrations(env.DB, migrations);
  const login = await api("/v1/auth/login", { body: { email: user.email, password: user.password } });
  if (login.status !== 200) throw new Error(`login after the upgrade: ${login.status} ${login.text}`);
  token = login.body.session.accessToken;
});

describe("upgrading from the first migration keeps every row, readable through the API", () => {
  it("applied every migration in order, on a database that started at the first", async () => {
    expect(migrations.length).toBeGreaterThan(1);
    const applied = (await env.DB.prepare("SELECT name FROM d1_migrations ORDER BY id").all<{ name: string }>())
      .results;
    expect(applied.map((m) => m.name)).toEqual(migrations.map((m) => m.name));
    expect(await columns("users")).toEqual(expect.arrayContaining(["role", "disabled"]));
  });

  it("the account: password sign-in, profile, the Google identity", async () => {
    const me = await api("/v1/me", { token });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: user.id, email: user.email, name: user.name, avatarFileId: file.id });
    const idToken = await providerIdToken("google", { sub: googleSub, aud: "web-client-id" });
    const viaGoogle = await api("/v1/auth/idtoken", { body: { provider: "google", idToken } });
    expect(viaGoogle.status).toBe(200);
    expect(viaGoogle.body.user.id).toBe(user.id);
  });

  it("the session from before the upgrade is listed and its refresh token still works", async () => {
    const list = await api("/v1/auth/sessions", { token });
    expect(list.status).toBe(200);
    expect(list.body.items.map((s: { id: string }) => s.id)).toContain(session.id);
    const refreshed = await api("/v1/auth/refresh", { body: { refreshToken: session.refresh } });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.session.accessToken).toEqual(expect.any(String));
  });

  it("the record and its change-log entry", async () => {
    const rec = await api(`/v1/collections/notes/records/${note.id}`, { token });
    expect(rec.status).toBe(200);
    expect(rec.body).toMatchObject({ ...note, pinned: true, version: 2, ownerId: user.id });
    const changes = await api("/v1/collections/notes/changes", { token });
    expect(changes.status).toBe(200);
    expect(JSON.stringify(changes.body)).toContain(note.id);
  });

  it("the file: metadata and content", async () => {
    const meta = await api(`/v1/files/${file.id}`, { token });
    expect(meta.status).toBe(200);
    expect(meta.body).toMatchObject({
      id: file.id,
      name: file.name,
      size: file.bytes.length,
      contentType: "text/plain",
    });
    const content = await api(`/v1/files/${file.id}/content`, { token });
    expect(content.status).toBe(200);
    expect(content.text).toBe(file.bytes);
  });

  it("the room: members, last message, and its history answers (and takes new messages)", async () => {
    const r = await api(`/v1/rooms/${room.id}`, { token });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: room.id, name: room.name, kind: "group" });
    expect(JSON.stringify(r.body)).toContain(friend.id);
    const list = await api("/v1/rooms", { token });
    const listed = list.body.items.find((x: { id: string }) => x.id === room.id);
    expect(listed?.lastMessage?.text).toBe(lastMessage.text);
    const sent = await api(`/v1/rooms/${room.id}/messages`, { token, body: { clientId: "after-1", text: "after" } });
    expect(sent.status).toBe(201);
    const history = await api(`/v1/rooms/${room.id}/messages`, { token });
    expect(history.status).toBe(200);
    expect(JSON.stringify(history.body)).toContain("after");
  });

  it("the device", async () => {
    const devices = await api("/v1/devices", { token });
    expect(devices.status).toBe(200);
    expect(devices.body.items).toEqual([
      expect.objectContaining({ id: device.id, platform: "android", provider: "fcm" }),
    ]);
  });
});

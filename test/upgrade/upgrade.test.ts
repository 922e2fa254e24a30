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

/** Rows as the first migration's schema has them (no column a later migration added). */
async function fillFirstSchema() {
  const pw = await hashPassword(user.password);
  const refreshHash = await hashToken(session.refresh);
  const q = (sql: string, ...args: unknown[]) => env.DB.prepare(sql).bind(...args);
  await env.DB.batch([
    q(
      "INSERT INTO users (id, email, email_verified, password_hash, name, avatar_file_id, anonymous, created_at, updated_at) VALUES (?, ?, 1, ?, ?, ?, 0, ?, ?)",
      user.id,
      user.email,
      pw,
      user.name,
      file.id,
      now,
      now,
    ),
    q(
      "INSERT INTO users (id, email, email_verified, password_hash, name, anonymous, created_at, updated_at) VALUES (?, ?, 0, ?, 'Friend', 0, ?, ?)",
      friend.id,
      friend.email,
      pw,
      now,
      now,
    ),
    q(
      "INSERT INTO sessions (id, user_id, refresh_hash, user_agent, created_at, last_used_at, expires_at) VALUES (?, ?, ?, 'old-app/1.0', ?, ?, ?)",
      session.id,
      user.id,
      refreshHash,
      now,
      now,
      later,
    ),
    q("INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES (?, ?, ?)", refreshHash, session.id, now),
    q(
      "INSERT INTO identities (provider, subject, user_id, email, created_at) VALUES ('google', ?, ?, ?, ?)",
      googleSub,
      user.id,
      user.email,
      now,
    ),
    q(
      "INSERT INTO app_notes (id, owner_id, created_at, updated_at, version, title, body, pinned, tags) VALUES (?, ?, ?, ?, 2, ?, ?, 1, ?)",
      note.id,
      user.id,
      now,
      now,
      note.title,
      note.body,
      JSON.stringify(note.tags),
    ),
    q(
      "INSERT INTO record_changes (collection, record_id, owner_id, version, deleted, changed_at) VALUES ('notes', ?, ?, 2, 0, ?)",
      note.id,
      user.id,
      now,
    ),
    q(
      "INSERT INTO files (id, owner_id, object_key, name, content_type, size, visibility, sha256, etag, status, created_at) VALUES (?, ?, ?, ?, 'text/plain', ?, 'private', NULL, '', 'ready', ?)",
      file.id,
      user.id,
      `f/${file.id}`,
      file.name,
      file.bytes.length,
      now,
    ),
    q(
      "INSERT INTO rooms (id, kind, name, created_by, created_at, direct_key, last_seq, last_message, last_activity_at) VALUES (?, 'group', ?, ?, ?, NULL, 3, ?, ?)",
      room.id,
      room.name,
      user.id,
      now,
      JSON.stringify(lastMessage),
      now,
    ),
    q(
      "INSERT INTO room_members (room_id, user_id, role, last_read_seq, muted, joined_at) VALUES (?, ?, 'owner', 3, 0, ?), (?, ?, 'member', 1, 0, ?)",
      room.id,
      user.id,
      now,
      room.id,
      friend.id,
      now,
    ),
    q(
      "INSERT INTO devices (id, user_id, token, platform, provider, created_at, updated_at) VALUES (?, ?, ?, 'android', 'fcm', ?, ?)",
      device.id,
      user.id,
      device.token,
      now,
      now,
    ),
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

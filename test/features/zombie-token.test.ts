/**
 * Access tokens are checked without a database query per request; since issue 23.10 the
 * revocation list refuses a deleted account's token on every route (401) within 60 s, and at once
 * in the isolate that deleted it. Such a "zombie" token must never cause a 5xx or leave data
 * behind that escapes the deletion.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, expectProblem, signup } from "../helpers/api";

const png = () => {
  const b = new Uint8Array(64);
  b.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return b;
};

async function rowsOwnedBy(userId: string): Promise<Record<string, number>> {
  const tables = await env.DB.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'table' " +
      "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name != 'd1_migrations'",
  ).all<{ name: string }>();
  const out: Record<string, number> = {};
  for (const { name } of tables.results) {
    const cols = await env.DB.prepare(`SELECT name FROM pragma_table_info('${name}')`).all<{ name: string }>();
    for (const col of cols.results
      .map((c) => c.name)
      .filter((c) => ["user_id", "owner_id", "created_by"].includes(c))) {
      const n = await env.DB.prepare(`SELECT count(*) AS n FROM "${name}" WHERE "${col}" = ?`)
        .bind(userId)
        .first<{ n: number }>();
      // The revocation row names the deleted id on purpose (it refuses its tokens) and is pruned
      // once no access token it covers can still be valid.
      if (n && n.n > 0 && name !== "token_revocations") out[`${name}.${col}`] = n.n;
    }
  }
  return out;
}

describe("a token that outlived its account", () => {
  it("gets a 4xx from every write route and leaves nothing behind", async () => {
    const zombie = await signup();
    const friend = await signup();
    expect((await api("/v1/me", { method: "DELETE", token: zombie.accessToken })).status).toBe(204);
    const t = zombie.accessToken;
    // [method, path, request, expected status, expected code]: every route refuses the token (401)
    // before it runs; before the revocation list, some answered 409 (a write whose owner row is gone)
    // and logout 204.
    const calls: [string, string, Parameters<typeof api>[1], number, string | null][] = [
      ["POST", "/v1/collections/notes/records", { body: { title: "after death" } }, 401, "unauthorized"],
      [
        "POST",
        "/v1/collections/posts/records",
        { body: { text: "after death", imageFileId: null } },
        401,
        "unauthorized",
      ],
      ["POST", "/v1/files?name=a.png", { raw: png(), headers: { "content-type": "image/png" } }, 401, "unauthorized"],
      ["POST", "/v1/uploads", { headers: { "tus-resumable": "1.0.0", "upload-length": "10" } }, 401, "unauthorized"],
      ["POST", "/v1/rooms", { body: { kind: "direct", memberIds: [friend.id] } }, 401, "unauthorized"],
      ["POST", "/v1/rooms", { body: { kind: "group", name: "g", memberIds: [friend.id] } }, 401, "unauthorized"],
      [
        "POST",
        "/v1/devices",
        { body: { token: "a".repeat(64), platform: "ios", provider: "apns" } },
        401,
        "unauthorized",
      ],
      ["PATCH", "/v1/me", { body: { name: "ghost" } }, 401, "unauthorized"],
      ["POST", "/v1/auth/link", { body: { email: "ghost@example.com", password: "long enough" } }, 401, "unauthorized"],
      ["POST", "/v1/auth/verify-email", { body: {} }, 401, "unauthorized"],
      [
        "POST",
        "/v1/auth/password",
        { body: { currentPassword: zombie.password, newPassword: "another password" } },
        401,
        "unauthorized",
      ],
      ["POST", "/v1/auth/logout", { body: {} }, 401, "unauthorized"],
      ["GET", "/v1/me", {}, 401, "unauthorized"],
    ];
    for (const [method, path, opts, status, code] of calls) {
      const res = await api(path, { ...opts, method, token: t });
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(status);
      if (code) expectProblem(res, status, code);
    }
    expect(await rowsOwnedBy(zombie.id)).toEqual({});
  });
});

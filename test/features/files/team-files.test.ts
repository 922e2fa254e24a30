/**
 * Team files: upload, read (metadata, content with ranges, HEAD, signed URLs, thumbnails), list and
 * delete × {stranger, viewer, member, admin, owner, removed member, service key}; a removal holds at
 * once; team deletion leaves no row and no object; the uploader's quota counts the file; query plans.
 */
import { env, exports } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { createDb } from "../../../src/db";
import { storageUsed } from "../../../src/features/files/service";
import { fileForQuery, getFileFor, listTeamFilesQuery } from "../../../src/features/files/team-access";
import { api, serviceKey, signup, type TestUser } from "../../helpers/api";
import { ACTORS, type Actor, createTeam, memberAs, teamWithActors } from "../teams/helpers";
import { bytesOf, pngBytes, uploadRaw } from "./helpers";
import { makePng } from "./image-fixtures";

const db = createDb(env.DB);

async function fixture() {
  const { team, users, tokenOf } = await teamWithActors();
  return { team, users, tokenOf };
}

async function removeMember(owner: TestUser, teamId: string, u: TestUser) {
  const gone = await api(`/v1/teams/${teamId}/members/${u.id}`, { method: "DELETE", token: owner.accessToken });
  expect(gone.status).toBe(204);
}

/** Uploads a private (unless said) PNG to the team as `token`. */
const teamUpload = (token: string, teamId: string, visibility: "public" | "private" = "private") =>
  api(`/v1/files?teamId=${teamId}&name=t.png&visibility=${visibility}`, {
    method: "POST",
    token,
    raw: pngBytes(2000),
    headers: { "content-type": "image/png" },
  });

async function uploaded(token: string, teamId: string, visibility: "public" | "private" = "private") {
  const res = await teamUpload(token, teamId, visibility);
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; teamId: string; ownerId: string };
}

async function statusOf(path: string, token: string, headers: Record<string, string> = {}) {
  return (await bytesOf(path, { token, headers })).status;
}

async function headStatus(path: string, token: string) {
  const req = new Request(`https://outpost.test${path}`, {
    method: "HEAD",
    headers: { authorization: `Bearer ${token}` },
  });
  const res = await exports.default.fetch(req);
  await res.body?.cancel();
  return res.status;
}

describe("team files: the role matrix", () => {
  it("upload: members, admins, the owner; a viewer 403; non-members 404; the service key 403", async () => {
    const f = await fixture();
    const want: Record<Actor, number> = {
      stranger: 404,
      viewer: 403,
      member: 201,
      admin: 201,
      owner: 201,
      removed: 404,
      service: 403,
    };
    for (const a of ACTORS) {
      const res = await teamUpload(f.tokenOf(a), f.team.id);
      expect(res.status, `${a}: ${res.text}`).toBe(want[a]);
      if (res.status === 201) expect(res.body.teamId).toBe(f.team.id);
    }
    // Refused uploads left no row behind.
    const rows = await env.DB.prepare("SELECT owner_id FROM files WHERE team_id = ?").bind(f.team.id).all();
    expect(rows.results.length).toBe(3);
  });

  it("read: metadata, content, ranges, HEAD, thumbnails, signed URLs for every role; 404 for non-members", async () => {
    const f = await fixture();
    const file = await uploaded(f.users.member.accessToken, f.team.id);
    const png = await makePng(64, 48);
    const img = await api(`/v1/files?teamId=${f.team.id}&name=p.png`, {
      method: "POST",
      token: f.users.admin.accessToken,
      raw: png,
      headers: { "content-type": "image/png" },
    });
    expect(img.status, img.text).toBe(201);
    const ok = new Set<Actor>(["viewer", "member", "admin", "owner", "service"]);
    for (const a of ACTORS) {
      const want = ok.has(a) ? 200 : 404;
      const token = f.tokenOf(a);
      expect((await api(`/v1/files/${file.id}`, { token })).status, `${a} metadata`).toBe(want);
      expect(await statusOf(`/v1/files/${file.id}/content`, token), `${a} content`).toBe(want);
      expect(await statusOf(`/v1/files/${file.id}/content`, token, { range: "bytes=0-9" }), `${a} range`).toBe(
        ok.has(a) ? 206 : 404,
      );
      expect(await headStatus(`/v1/files/${file.id}/content`, token), `${a} HEAD`).toBe(want);
      expect(await statusOf(`/v1/files/${img.body.id}/content?thumb=sm`, token), `${a} thumb`).toBe(want);
      const signed = await api(`/v1/files/${file.id}/signed-url`, { token, body: {} });
      expect(signed.status, `${a} signed-url`).toBe(want);
    }
  });

  it("public team files stay public", async () => {
    const f = await fixture();
    const file = await uploaded(f.users.member.accessToken, f.team.id, "public");
    expect((await api(`/v1/files/${file.id}`)).status).toBe(200);
    expect((await api(`/v1/files/${file.id}`, { token: f.users.stranger.accessToken })).status).toBe(200);
  });

  it("list: the team's files for every role, 404 for non-members, 403 for the service key", async () => {
    const f = await fixture();
    const a = await uploaded(f.users.member.accessToken, f.team.id);
    const b = await uploaded(f.users.owner.accessToken, f.team.id);
    // A file of the member's own, outside the team, is not in the team's list (nor team files in theirs).
    const own = await uploadRaw(f.users.member.accessToken, pngBytes(500), { name: "own.png" });
    const want: Record<Actor, number> = {
      stranger: 404,
      viewer: 200,
      member: 200,
      admin: 200,
      owner: 200,
      removed: 404,
      service: 403,
    };
    for (const actor of ACTORS) {
      const res = await api(`/v1/files?teamId=${f.team.id}`, { token: f.tokenOf(actor) });
      expect(res.status, `${actor}: ${res.text}`).toBe(want[actor]);
      if (res.status === 200) expect(res.body.items.map((x: { id: string }) => x.id)).toEqual([b.id, a.id]);
    }
    const mine = await api("/v1/files", { token: f.users.member.accessToken });
    expect(mine.body.items.map((x: { id: string }) => x.id)).toEqual([own.body.id]);
  });

  it("list pages with the cursor, newest first", async () => {
    const f = await fixture();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.unshift((await uploaded(f.users.member.accessToken, f.team.id)).id);
    const p1 = await api(`/v1/files?teamId=${f.team.id}&limit=2`, { token: f.users.viewer.accessToken });
    expect(p1.body.items.map((x: { id: string }) => x.id)).toEqual(ids.slice(0, 2));
    const p2 = await api(`/v1/files?teamId=${f.team.id}&limit=2&cursor=${p1.body.nextCursor}`, {
      token: f.users.viewer.accessToken,
    });
    expect(p2.body.items.map((x: { id: string }) => x.id)).toEqual(ids.slice(2));
    expect(p2.body.nextCursor).toBeNull();
    const bad = await api(`/v1/files?teamId=${f.team.id}&cursor=nonsense`, { token: f.users.viewer.accessToken });
    expect(bad.status).toBe(400);
  });

  it("delete: the uploader, admins, the owner and the service key; 404 for the rest", async () => {
    const f = await fixture();
    const want: Record<Actor, number> = {
      stranger: 404,
      viewer: 404,
      member: 404,
      admin: 204,
      owner: 204,
      removed: 404,
      service: 204,
    };
    for (const a of ACTORS) {
      // Someone else's file (uploaded by a member who is not the actor).
      const uploader = a === "member" ? f.users.admin : f.users.member;
      const file = await uploaded(uploader.accessToken, f.team.id);
      const res = await api(`/v1/files/${file.id}`, { method: "DELETE", token: f.tokenOf(a) });
      expect(res.status, `${a}: ${res.text}`).toBe(want[a]);
      const left = await env.DB.prepare("SELECT 1 FROM files WHERE id = ?").bind(file.id).first();
      expect(left === null).toBe(want[a] === 204);
    }
    // The uploader deletes their own team file, as a plain member.
    const mine = await uploaded(f.users.member.accessToken, f.team.id);
    expect((await api(`/v1/files/${mine.id}`, { method: "DELETE", token: f.users.member.accessToken })).status).toBe(
      204,
    );
  });
});

describe("team files: access changes and team deletion", () => {
  it("a removed member gets 404 at once, even for a file they uploaded", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    const m = await memberAs(owner, team.id, "member");
    const file = await uploaded(m.accessToken, team.id);
    expect((await api(`/v1/files/${file.id}`, { token: m.accessToken })).status).toBe(200);
    await removeMember(owner, team.id, m);
    expect((await api(`/v1/files/${file.id}`, { token: m.accessToken })).status).toBe(404);
    expect(await statusOf(`/v1/files/${file.id}/content`, m.accessToken)).toBe(404);
    expect((await api(`/v1/files?teamId=${team.id}`, { token: m.accessToken })).status).toBe(404);
    expect((await api(`/v1/files/${file.id}`, { method: "DELETE", token: m.accessToken })).status).toBe(404);
    expect((await teamUpload(m.accessToken, team.id)).status).toBe(404);
  });

  it("deleting the team leaves no file row and no object", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    const m = await memberAs(owner, team.id, "member");
    const a = await uploaded(m.accessToken, team.id);
    const b = await uploaded(owner.accessToken, team.id, "public");
    const own = await uploadRaw(m.accessToken, pngBytes(500), { name: "own.png" });
    expect(await env.MEDIA.head(`f/${a.id}`)).not.toBeNull();
    const res = await api(`/v1/teams/${team.id}`, { method: "DELETE", token: owner.accessToken });
    expect(res.status).toBe(204);
    const rows = await env.DB.prepare("SELECT id FROM files WHERE team_id = ?").bind(team.id).all();
    expect(rows.results).toEqual([]);
    expect(await env.MEDIA.head(`f/${a.id}`)).toBeNull();
    expect(await env.MEDIA.head(`f/${b.id}`)).toBeNull();
    const trash = await env.DB.prepare("SELECT 1 FROM file_trash WHERE object_key IN (?, ?)")
      .bind(`f/${a.id}`, `f/${b.id}`)
      .all();
    expect(trash.results).toEqual([]);
    // The member's own file outside the team stays.
    expect(await env.MEDIA.head(`f/${own.body.id}`)).not.toBeNull();
  });

  it("account deletion that deletes a team takes its files too", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    const m = await memberAs(owner, team.id, "member");
    const file = await uploaded(m.accessToken, team.id);
    const res = await api(`/v1/admin/users/${owner.id}`, { method: "DELETE", token: serviceKey() });
    expect(res.status).toBe(204);
    expect(await env.DB.prepare("SELECT 1 FROM files WHERE id = ?").bind(file.id).first()).toBeNull();
    expect(await env.MEDIA.head(`f/${file.id}`)).toBeNull();
  });

  it("a team file counts against its uploader's quota, not the team owner's", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    const m = await memberAs(owner, team.id, "member");
    await uploaded(m.accessToken, team.id);
    const used = async (id: string) => (await db.get<{ u: number }>(sql`SELECT ${storageUsed(id)} AS u`)).u;
    expect(await used(m.id)).toBe(2000);
    expect(await used(owner.id)).toBe(0);
  });
});

describe("team files: query plans", () => {
  const plan = async (q: { toSQL(): { sql: string; params: unknown[] } }) => {
    const { sql: text, params } = q.toSQL();
    const res = await env.DB.prepare(`EXPLAIN QUERY PLAN ${text}`)
      .bind(...params)
      .all<{ detail: string }>();
    return res.results.map((r) => r.detail).join("\n");
  };

  it("the team's list walks files_team_idx newest first, with no sort and no scan", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    for (const after of [null, { at: new Date().toISOString(), id: crypto.randomUUID() }]) {
      const p = await plan(listTeamFilesQuery(db, team.id, owner.id, 10, after));
      expect(p).toContain("files_team_idx");
      expect(p).not.toContain("USE TEMP B-TREE");
      for (const line of p.split("\n")) expect(line).not.toMatch(/^SCAN (?!.*USING)/);
    }
  });

  it("a file read with the caller's role is one primary-key lookup of each table", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    const file = await uploaded(owner.accessToken, team.id);
    const p = await plan(fileForQuery(db, file.id, owner.id));
    expect(p).toContain("sqlite_autoindex_files_1");
    expect(p).toContain("sqlite_autoindex_team_members_1");
    for (const line of p.split("\n")) expect(line).not.toMatch(/^SCAN /);
    const row = await getFileFor(db, file.id, owner.id);
    expect(row?.teamRole).toBe("owner");
    expect((await getFileFor(db, file.id, null))?.teamRole).toBeNull();
  });
});

describe("team files by tus (Upload-Metadata teamId)", () => {
  const TUS = { "tus-resumable": "1.0.0" };
  const meta = (teamId: string) => `filename ${btoa("t.png")},filetype ${btoa("image/png")},teamId ${btoa(teamId)}`;
  const create = (token: string, teamId: string, length: number) =>
    api("/v1/uploads", {
      method: "POST",
      token,
      headers: { ...TUS, "upload-length": String(length), "upload-metadata": meta(teamId) },
    });
  const patch = (token: string, path: string, offset: number, body: Uint8Array) =>
    api(path, {
      method: "PATCH",
      token,
      raw: body,
      headers: { ...TUS, "content-type": "application/offset+octet-stream", "upload-offset": String(offset) },
    });

  it("members and up start one; a viewer gets 403, a stranger or removed member 404, and nothing is left", async () => {
    const { team, tokenOf } = await fixture();
    const expected: Partial<Record<Actor, number>> = {
      stranger: 404,
      viewer: 403,
      member: 201,
      admin: 201,
      owner: 201,
      removed: 404,
    };
    for (const [a, status] of Object.entries(expected)) {
      const res = await create(tokenOf(a as Actor), team.id, 100);
      expect(res.status, `${a}: ${res.text}`).toBe(status);
    }
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM uploads WHERE team_id = ?").bind(team.id).first();
    expect(rows?.n).toBe(3);
  });

  it("a finished upload is a team file; an uploader removed halfway gets 404 and the file never appears", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    const member = await memberAs(owner, team.id, "member");
    const png = pngBytes(3000);
    const started = await create(member.accessToken, team.id, png.length);
    expect(started.status, started.text).toBe(201);
    const path = new URL(started.headers.get("location")!).pathname;
    expect((await patch(member.accessToken, path, 0, png.subarray(0, 1000))).status).toBe(204);
    const done = await patch(member.accessToken, path, 1000, png.subarray(1000));
    expect(done.status, done.text).toBe(204);
    const fileId = done.headers.get("outpost-file-id")!;
    const listed = await api(`/v1/files?teamId=${team.id}`, { token: owner.accessToken });
    expect(listed.body.items.map((f: { id: string; teamId: string }) => [f.id, f.teamId])).toEqual([[fileId, team.id]]);

    const second = await create(member.accessToken, team.id, png.length);
    const path2 = new URL(second.headers.get("location")!).pathname;
    expect((await patch(member.accessToken, path2, 0, png.subarray(0, 1000))).status).toBe(204);
    await removeMember(owner, team.id, member);
    const refused = await patch(member.accessToken, path2, 1000, png.subarray(1000));
    expect(refused.status, refused.text).toBe(404);
    const after = await api(`/v1/files?teamId=${team.id}`, { token: owner.accessToken });
    expect(after.body.items).toHaveLength(1);
  });

  it("deleting the team removes its uploads in progress", async () => {
    const owner = await signup();
    const team = await createTeam(owner);
    const started = await create(owner.accessToken, team.id, 5000);
    expect(started.status).toBe(201);
    expect((await api(`/v1/teams/${team.id}`, { method: "DELETE", token: owner.accessToken })).status).toBe(204);
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM uploads WHERE team_id = ?").bind(team.id).first();
    expect(rows?.n).toBe(0);
    const path = new URL(started.headers.get("location")!).pathname;
    expect((await api(path, { method: "HEAD", token: owner.accessToken, headers: TUS })).status).toBe(404);
  });
});

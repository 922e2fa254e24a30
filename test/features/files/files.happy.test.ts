import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { createDb } from "../../../src/db";
import { filesCleanup } from "../../../src/features/files/service";
import { api, documentedOperations, serviceKey, signup } from "../../helpers/api";
import { bytesOf, jpegBytes, pathOf, pngBytes, sha256Hex, uploadPng, uploadRaw } from "./helpers";

describe("files: happy paths", () => {
  it("stores a raw upload and serves its metadata and bytes", async () => {
    const u = await signup();
    const bytes = pngBytes(2048);
    const res = await uploadRaw(u.accessToken, bytes, { name: "holiday.png" });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      name: "holiday.png",
      contentType: "image/png",
      size: 2048,
      visibility: "private",
      ownerId: u.id,
      createdAt: expect.any(String),
      url: `https://outpost.test/v1/files/${res.body.id}/content`,
      sha256: await sha256Hex(bytes),
      width: null,
      height: null,
      placeholder: null,
    });
    expect(res.headers.get("location")).toBe(`https://outpost.test/v1/files/${res.body.id}`);

    const meta = await api(`/v1/files/${res.body.id}`, { token: u.accessToken });
    expect(meta.status).toBe(200);
    expect(meta.body).toEqual(res.body);

    const content = await bytesOf(`/v1/files/${res.body.id}/content`, { token: u.accessToken });
    expect(content.status).toBe(200);
    expect(content.bytes).toEqual(bytes);
    expect(content.headers.get("content-type")).toBe("image/png");
    expect(content.headers.get("etag")).toBe(`"${res.body.sha256}"`);
    expect(content.headers.get("cache-control")).toContain("private");
    expect(content.headers.get("content-disposition")).toBe(
      `inline; filename="holiday.png"; filename*=UTF-8''holiday.png`,
    );
    expect(content.headers.get("content-length")).toBe("2048");
  });

  it("shortens a long name by whole characters, never splitting an emoji", async () => {
    const u = await signup();
    const res = await uploadRaw(u.accessToken, pngBytes(100), { name: `${"😀".repeat(300)}.png` });
    expect(res.status).toBe(201);
    expect(res.body.name).toBe("😀".repeat(255));
    const content = await bytesOf(`/v1/files/${res.body.id}/content`, { token: u.accessToken });
    expect(content.headers.get("content-disposition")).toBe(
      `inline; filename="${"_".repeat(255)}"; filename*=UTF-8''${"%F0%9F%98%80".repeat(255)}`,
    );
  });

  it("stores the `file` field of a multipart/form-data upload, with the part's filename and type", async () => {
    const u = await signup();
    const form = new FormData();
    form.set("caption", "not the file");
    form.set("file", new File([jpegBytes(5000)], "cat.jpg", { type: "image/jpeg" }));
    form.set("after", "ignored");
    const res = await api("/v1/files?visibility=public", { method: "POST", token: u.accessToken, raw: form });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name: "cat.jpg",
      contentType: "image/jpeg",
      size: 5000,
      visibility: "public",
      sha256: await sha256Hex(jpegBytes(5000)),
    });
    const content = await bytesOf(pathOf(res.body.url));
    expect(content.bytes).toEqual(jpegBytes(5000));
  });

  it("serves public files to anyone, cacheable", async () => {
    const owner = await signup();
    const f = await uploadPng(owner.accessToken, { visibility: "public" });
    const meta = await api(`/v1/files/${f.id}`);
    expect(meta.status).toBe(200);
    const content = await bytesOf(pathOf(f.url));
    expect(content.status).toBe(200);
    expect(content.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
  });

  it("stores non-media files unchecked and serves them as downloads in a sandbox", async () => {
    const u = await signup();
    const res = await uploadRaw(u.accessToken, "<html><script>alert(1)</script></html>", {
      type: "text/html; charset=utf-8",
      name: "page.html",
    });
    expect(res.status).toBe(201);
    expect(res.body.contentType).toBe("text/html");
    const content = await bytesOf(`/v1/files/${res.body.id}/content`, { token: u.accessToken });
    expect(content.headers.get("content-disposition")).toMatch(/^attachment;/);
    expect(content.headers.get("content-security-policy")).toBe("default-src 'none'; sandbox");
    expect(content.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("lists the caller's files newest first, page by page", async () => {
    const u = await signup();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await uploadPng(u.accessToken, { name: `p${i}.png` })).id);
    const first = await api("/v1/files?limit=2", { token: u.accessToken });
    expect(first.status).toBe(200);
    expect(first.body.items.map((f: { id: string }) => f.id)).toEqual([ids[2], ids[1]]);
    const second = await api(`/v1/files?limit=2&cursor=${first.body.nextCursor}`, { token: u.accessToken });
    expect(second.body).toEqual({ items: [expect.objectContaining({ id: ids[0] })], nextCursor: null });
  });

  it("signs a URL that opens a private file without a token until it expires", async () => {
    const u = await signup();
    const f = await uploadPng(u.accessToken);
    const res = await api(`/v1/files/${f.id}/signed-url`, { token: u.accessToken, body: { expiresIn: 60 } });
    expect(res.status).toBe(200);
    expect(res.body.url).toMatch(
      new RegExp(`^https://outpost.test/v1/files/${f.id}/content\\?exp=\\d+&sig=[A-Za-z0-9_-]{43}$`),
    );
    const expiresAt = Date.parse(res.body.expiresAt);
    expect(expiresAt - Date.now()).toBeGreaterThan(50_000);
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(61_000);
    const content = await bytesOf(pathOf(res.body.url));
    expect(content.status).toBe(200);
    expect(content.bytes).toEqual(pngBytes(1000));
    expect(content.headers.get("cache-control")).toContain("private");
    // …until it expires: at expiresAt (injected clock) the same URL is refused.
    try {
      vi.setSystemTime(expiresAt);
      expect((await bytesOf(pathOf(res.body.url))).status).toBe(403);
    } finally {
      vi.useRealTimers();
    }
  });

  it("lets the service key read, sign and delete any file", async () => {
    const u = await signup();
    const f = await uploadPng(u.accessToken);
    expect((await api(`/v1/files/${f.id}`, { token: serviceKey() })).status).toBe(200);
    expect((await bytesOf(`/v1/files/${f.id}/content`, { token: serviceKey() })).status).toBe(200);
    expect((await api(`/v1/files/${f.id}/signed-url`, { token: serviceKey(), body: {} })).status).toBe(200);
    expect((await api(`/v1/files/${f.id}`, { method: "DELETE", token: serviceKey() })).status).toBe(204);
  });

  it("deletes a file: row, bytes and any avatar pointing at it", async () => {
    const u = await signup();
    const f = await uploadPng(u.accessToken);
    expect(
      (await api("/v1/me", { method: "PATCH", token: u.accessToken, body: { avatarFileId: f.id } })).body.avatarFileId,
    ).toBe(f.id);
    const del = await api(`/v1/files/${f.id}`, { method: "DELETE", token: u.accessToken });
    expect(del.status).toBe(204);
    expect((await api(`/v1/files/${f.id}`, { token: u.accessToken })).status).toBe(404);
    expect(await env.MEDIA.head(`f/${f.id}`)).toBeNull();
    expect((await api("/v1/me", { token: u.accessToken })).body.avatarFileId).toBeNull();
  });

  it("accepts the caller's own file as avatar", async () => {
    const u = await signup();
    const f = await uploadPng(u.accessToken);
    const res = await api("/v1/me", { method: "PATCH", token: u.accessToken, body: { avatarFileId: f.id } });
    expect(res.status).toBe(200);
    expect(res.body.avatarFileId).toBe(f.id);
  });

  it("removes the user's files from D1 and R2 when the account is deleted", async () => {
    const u = await signup();
    const a = await uploadPng(u.accessToken);
    const b = await uploadPng(u.accessToken, { visibility: "public" });
    expect(await env.MEDIA.head(`f/${a.id}`)).not.toBeNull();
    // The R2 part runs in waitUntil after the response: `settle` awaits it.
    expect((await api("/v1/me", { method: "DELETE", token: u.accessToken, settle: true })).status).toBe(204);
    expect(await env.MEDIA.head(`f/${a.id}`)).toBeNull();
    expect(await env.MEDIA.head(`f/${b.id}`)).toBeNull();
    expect((await api(`/v1/files/${b.id}`)).status).toBe(404);
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM files WHERE owner_id = ?")
      .bind(u.id)
      .first<{ n: number }>();
    expect(rows?.n).toBe(0);
  });

  it("cleanup removes abandoned pending uploads and objects left in the trash", async () => {
    const u = await signup();
    const created = new Date(Date.now() - 7 * 3600 * 1000).toISOString();
    await env.DB.prepare(
      "INSERT INTO files (id, owner_id, object_key, name, content_type, visibility, status, created_at) " +
        "VALUES (?, ?, ?, 'x', 'image/png', 'private', 'pending', ?)",
    )
      .bind("0190aaaa-0000-7000-8000-000000000001", u.id, "f/0190aaaa-0000-7000-8000-000000000001", created)
      .run();
    await env.MEDIA.put("f/0190aaaa-0000-7000-8000-000000000001", "half an upload");
    await env.DB.prepare(
      "INSERT INTO file_trash (object_key, created_at) VALUES ('f/0190aaaa-0000-7000-8000-000000000002', ?)",
    )
      .bind(created)
      .run();
    await env.MEDIA.put("f/0190aaaa-0000-7000-8000-000000000002", "orphan");
    const fresh = await uploadPng(u.accessToken);

    await filesCleanup(env, createDb(env.DB), new Date());

    expect(await env.MEDIA.head("f/0190aaaa-0000-7000-8000-000000000001")).toBeNull();
    expect(await env.MEDIA.head("f/0190aaaa-0000-7000-8000-000000000002")).toBeNull();
    expect((await env.DB.prepare("SELECT count(*) AS n FROM file_trash").first<{ n: number }>())?.n).toBe(0);
    expect(
      (await env.DB.prepare("SELECT count(*) AS n FROM files WHERE status = 'pending'").first<{ n: number }>())?.n,
    ).toBe(0);
    expect(await env.MEDIA.head(`f/${fresh.id}`)).not.toBeNull();
  });

  // Every route is documented, and no other path under those prefixes.
  it("the OpenAPI document lists exactly the files and uploads routes", async () => {
    expect(await documentedOperations("/v1/files", "/v1/uploads")).toEqual(
      [
        "POST /v1/files",
        "GET /v1/files",
        "GET /v1/files/{id}",
        "DELETE /v1/files/{id}",
        "GET /v1/files/{id}/content",
        "POST /v1/files/{id}/signed-url",
        "POST /v1/uploads",
        "GET /v1/uploads/{id}",
        "PATCH /v1/uploads/{id}",
        "DELETE /v1/uploads/{id}",
      ].sort(),
    );
  });

  it("answers a retried signed-url request with the same Idempotency-Key with the first URL", async () => {
    const u = await signup();
    const f = await uploadPng(u.accessToken);
    const sign = (key?: string) =>
      api(`/v1/files/${f.id}/signed-url`, {
        token: u.accessToken,
        body: { expiresIn: 60 },
        headers: key ? { "idempotency-key": key } : {},
      });
    const start = Date.now();
    try {
      vi.setSystemTime(start);
      const first = await sign("sign-1");
      expect(first.status).toBe(200);
      // Five seconds later (injected clock): a new signature would carry a later exp.
      vi.setSystemTime(start + 5000);
      const again = await sign("sign-1");
      expect(again.body).toEqual(first.body);
      const fresh = await sign();
      expect(fresh.status).toBe(200);
      expect(fresh.body.url).not.toBe(first.body.url);
      expect(Date.parse(fresh.body.expiresAt) - Date.parse(first.body.expiresAt)).toBe(5000);
    } finally {
      vi.useRealTimers();
    }
  });

  it("replays a multipart upload retried with the same Idempotency-Key, even with a new boundary", async () => {
    const u = await signup();
    const enc = new TextEncoder();
    const body = (boundary: string) => {
      const head = enc.encode(
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n` +
          "Content-Type: image/png\r\n\r\n",
      );
      const tail = enc.encode(`\r\n--${boundary}--\r\n`);
      const png = pngBytes(300);
      const out = new Uint8Array(head.length + png.length + tail.length);
      out.set(head);
      out.set(png, head.length);
      out.set(tail, head.length + png.length);
      return out;
    };
    // Mobile HTTP clients pick a fresh random boundary each time a request is built.
    const send = (boundary: string) =>
      api("/v1/files", {
        method: "POST",
        token: u.accessToken,
        raw: body(boundary),
        headers: { "content-type": `multipart/form-data; boundary=${boundary}`, "idempotency-key": "form-1" },
      });
    const first = await send("boundary-aaaaaaaaaaaa");
    expect(first.status).toBe(201);
    const retry = await send("boundary-bbbbbbbbbbbb");
    expect(retry.status, retry.text).toBe(201);
    expect(retry.body).toEqual(first.body);
    expect((await api("/v1/files", { token: u.accessToken })).body.items).toHaveLength(1);
  });
});

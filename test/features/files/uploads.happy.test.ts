import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createDb } from "../../../src/db";
import { uploadsCleanup } from "../../../src/features/files/tus/service";
import { api, signup } from "../../helpers/api";
import { bytesOf, pngBytes } from "./helpers";

const MiB = 1024 * 1024;
const TUS = { "tus-resumable": "1.0.0" };
const b64 = (s: string) => btoa(s);

async function create(token: string, length: number, meta = `filename ${b64("a.png")},filetype ${b64("image/png")}`) {
  const res = await api("/v1/uploads", {
    method: "POST",
    token,
    headers: { ...TUS, "upload-length": String(length), "upload-metadata": meta },
  });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${res.text}`);
  return new URL(res.headers.get("location")!).pathname;
}

const patch = (token: string, path: string, offset: number, body: Uint8Array) =>
  api(path, {
    method: "PATCH",
    token,
    raw: body,
    headers: { ...TUS, "content-type": "application/offset+octet-stream", "upload-offset": String(offset) },
  });

describe("uploads (tus): happy paths", () => {
  it("answers OPTIONS discovery with the version, extensions and max size", async () => {
    const res = await api("/v1/uploads", { method: "OPTIONS" });
    expect(res.status).toBe(204);
    expect(res.headers.get("tus-resumable")).toBe("1.0.0");
    expect(res.headers.get("tus-version")).toBe("1.0.0");
    expect(res.headers.get("tus-extension")).toBe("creation,creation-with-upload,termination,expiration");
    expect(res.headers.get("tus-max-size")).toBe(String(5 * 1024 * MiB));
  });

  it("creates an upload with Location, Upload-Offset 0 and Upload-Expires", async () => {
    const u = await signup();
    const res = await api("/v1/uploads", {
      method: "POST",
      token: u.accessToken,
      headers: {
        ...TUS,
        "upload-length": "100",
        "upload-metadata": `filename ${b64("x.png")},filetype ${b64("image/png")},visibility ${b64("public")}`,
      },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get("location")).toMatch(/^https:\/\/outpost\.test\/v1\/uploads\/[0-9a-f-]{36}$/);
    expect(res.headers.get("upload-offset")).toBe("0");
    expect(res.headers.get("tus-resumable")).toBe("1.0.0");
    const expires = Date.parse(res.headers.get("upload-expires")!);
    expect(expires - Date.now()).toBeGreaterThan(23 * 3600 * 1000);
  });

  it("assembles odd-sized chunks into equal R2 parts and makes an ordinary file", async () => {
    const u = await signup();
    const source = pngBytes(11 * MiB + 7);
    const path = await create(u.accessToken, source.length);
    // Chunks of 2 MiB + 3: every part boundary falls inside a chunk, every PATCH leaves a tail.
    let offset = 0;
    while (offset < source.length) {
      const chunk = source.subarray(offset, Math.min(offset + 2 * MiB + 3, source.length));
      const res = await patch(u.accessToken, path, offset, chunk);
      expect(res.status).toBe(204);
      offset += chunk.length;
      expect(res.headers.get("upload-offset")).toBe(String(offset));
    }
    const head = await api(path, { method: "HEAD", token: u.accessToken, headers: TUS });
    const fileId = head.headers.get("outpost-file-id")!;
    expect(fileId).toMatch(/^[0-9a-f-]{36}$/);
    const content = await bytesOf(`/v1/files/${fileId}/content`, { token: u.accessToken });
    expect(content.bytes.length).toBe(source.length);
    expect(content.bytes.every((b, i) => b === source[i])).toBe(true);
    // Only the file remains in R2: no tail objects are left behind.
    const tails = await env.MEDIA.list({ prefix: `u/${path.split("/").pop()}/` });
    expect(tails.objects).toHaveLength(0);
  });

  it("accepts any metadata key, even one named like a JavaScript object property", async () => {
    const u = await signup();
    const meta = `constructor ${b64("x")},toString,__proto__ ${b64("y")},filename ${b64("k.txt")}`;
    const res = await api("/v1/uploads", {
      method: "POST",
      token: u.accessToken,
      headers: { ...TUS, "upload-length": "0", "upload-metadata": meta },
    });
    expect(res.status, res.text).toBe(201);
    expect((await api(`/v1/files/${res.headers.get("outpost-file-id")}`, { token: u.accessToken })).body.name).toBe(
      "k.txt",
    );
  });

  it("completes an empty upload at creation", async () => {
    const u = await signup();
    const res = await api("/v1/uploads", {
      method: "POST",
      token: u.accessToken,
      headers: {
        ...TUS,
        "upload-length": "0",
        "upload-metadata": `filename ${b64("empty.txt")},filetype ${b64("text/plain")}`,
      },
    });
    expect(res.status).toBe(201);
    const id = res.headers.get("outpost-file-id");
    expect(id).toBeTruthy();
    expect((await api(`/v1/files/${id}`, { token: u.accessToken })).body).toMatchObject({ size: 0, name: "empty.txt" });
  });

  it("terminates an upload: 204, then 404, and its buffered bytes are gone", async () => {
    const u = await signup();
    const path = await create(u.accessToken, 1000);
    expect((await patch(u.accessToken, path, 0, pngBytes(100))).status).toBe(204);
    const id = path.split("/").pop();
    expect((await env.MEDIA.list({ prefix: `u/${id}/` })).objects).toHaveLength(1);
    expect((await api(path, { method: "DELETE", token: u.accessToken, headers: TUS })).status).toBe(204);
    expect((await api(path, { method: "HEAD", token: u.accessToken, headers: TUS })).status).toBe(404);
    expect((await env.MEDIA.list({ prefix: `u/${id}/` })).objects).toHaveLength(0);
  });

  it("cleanup aborts expired uploads and removes their buffered bytes; finished files stay", async () => {
    const u = await signup();
    const open = await create(u.accessToken, 1000);
    await patch(u.accessToken, open, 0, pngBytes(100));
    const done = await create(u.accessToken, 10);
    const fin = await patch(u.accessToken, done, 0, pngBytes(10));
    const fileId = fin.headers.get("outpost-file-id")!;

    await uploadsCleanup(env, createDb(env.DB), new Date(Date.now() + 25 * 3600 * 1000));

    expect((await api(open, { method: "HEAD", token: u.accessToken, headers: TUS })).status).toBe(404);
    expect((await env.MEDIA.list({ prefix: `u/${open.split("/").pop()}/` })).objects).toHaveLength(0);
    expect((await api(`/v1/files/${fileId}`, { token: u.accessToken })).status).toBe(200);
  });

  it("account deletion aborts the user's unfinished uploads and removes their buffered bytes", async () => {
    const u = await signup();
    const path = await create(u.accessToken, 1000);
    await patch(u.accessToken, path, 0, pngBytes(100));
    const id = path.split("/").pop();
    expect((await env.MEDIA.list({ prefix: `u/${id}/` })).objects).toHaveLength(1);
    // The R2 part runs in waitUntil after the response: `settle` awaits it.
    expect((await api("/v1/me", { method: "DELETE", token: u.accessToken, settle: true })).status).toBe(204);
    expect((await env.MEDIA.list({ prefix: `u/${id}/` })).objects).toHaveLength(0);
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM uploads WHERE owner_id = ?")
      .bind(u.id)
      .first<{ n: number }>();
    expect(rows?.n).toBe(0);
  });
});

/**
 * Per-account storage quota (STORAGE_QUOTA_BYTES, default 1 GiB): files and unfinished tus
 * uploads (their Upload-Length) count; an upload that would pass it is a 413 quota_exceeded,
 * refused before its bytes are stored, and leaves nothing in R2 or D1.
 * Requests go through `app.fetch` with an env whose quota is small (200,000 bytes).
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { createDb } from "../../../src/db";
import { users } from "../../../src/db/schema";
import { storageUsed } from "../../../src/features/files/service";
import { app } from "../../../src/router";
import { freshIp, signup, type TestUser } from "../../helpers/api";
import { pngBytes } from "./helpers";

const QUOTA = 200_000;
const TUS = { "tus-resumable": "1.0.0" };

interface Res {
  status: number;
  headers: Headers;
  body: any;
}

/** One request to the app with the small quota. */
async function call(
  path: string,
  init: { method?: string; token?: string; body?: BodyInit | null; headers?: Record<string, string> } = {},
): Promise<Res> {
  const headers = new Headers(init.headers);
  headers.set("cf-connecting-ip", freshIp());
  if (init.token) headers.set("authorization", `Bearer ${init.token}`);
  const ctx = createExecutionContext();
  const res = await app.fetch(
    new Request(`https://outpost.test${path}`, { method: init.method ?? "GET", headers, body: init.body ?? null }),
    { ...env, STORAGE_QUOTA_BYTES: String(QUOTA) },
    ctx,
  );
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return {
    status: res.status,
    headers: res.headers,
    body: text && (res.headers.get("content-type") ?? "").includes("json") ? JSON.parse(text) : text,
  };
}

const upload = (u: TestUser, bytes: Uint8Array) =>
  call("/v1/files?name=q.png", {
    method: "POST",
    token: u.accessToken,
    body: bytes,
    headers: { "content-type": "image/png" },
  });

/** A body without Content-Length: `chunks` are sent, then the stream ends. */
function chunked(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(ctl) {
      if (i < chunks.length) ctl.enqueue(chunks[i++]!);
      else ctl.close();
    },
  });
}

/** What is stored for a user: ready and pending file rows, tus upload rows, and every R2 key. */
async function stored(userId: string) {
  const files = await env.DB.prepare("SELECT id, status, size FROM files WHERE owner_id = ?").bind(userId).all();
  const uploads = await env.DB.prepare("SELECT id FROM uploads WHERE owner_id = ?").bind(userId).all();
  const keys = (await env.MEDIA.list({ limit: 1000 })).objects.map((o) => o.key).sort();
  return { files: files.results, uploads: uploads.results, keys };
}

function expectQuotaExceeded(res: Res) {
  expect(res.status, JSON.stringify(res.body)).toBe(413);
  expect(res.headers.get("content-type")).toContain("application/problem+json");
  expect(res.body.code).toBe("quota_exceeded");
}

const tusCreate = (u: TestUser, length: number, first?: Uint8Array) =>
  call("/v1/uploads", {
    method: "POST",
    token: u.accessToken,
    body: first ?? null,
    headers: {
      ...TUS,
      "upload-length": String(length),
      "upload-metadata": `filename ${btoa("t.png")},filetype ${btoa("image/png")}`,
      ...(first ? { "content-type": "application/offset+octet-stream" } : {}),
    },
  });

describe("files: storage quota", () => {
  // The 413 quota_exceeded comes before the body is read; nothing is stored.
  it("refuses POST /v1/files over quota by Content-Length with 413", async () => {
    const u = await signup();
    expect((await upload(u, pngBytes(150_000))).status).toBe(201);
    const before = await stored(u.id);
    // Only 64 of the declared bytes are ever written: a server that read the body would wait forever.
    const body = new FixedLengthStream(60_000);
    const writer = body.writable.getWriter();
    void writer.write(pngBytes(64)).catch(() => {});
    const res = await call("/v1/files", {
      method: "POST",
      token: u.accessToken,
      body: body.readable,
      headers: { "content-type": "image/png", "content-length": "60000" },
    });
    await writer.abort().catch(() => {});
    expectQuotaExceeded(res);
    expect(res.body.detail).toContain("50000 bytes");
    expect(await stored(u.id)).toEqual(before);
  });

  // The streaming size check stops at the quota, and the partial upload is removed.
  it("stops a streamed upload without Content-Length at the remaining quota", async () => {
    const u = await signup();
    expect((await upload(u, pngBytes(150_000))).status).toBe(201);
    const before = await stored(u.id);
    const data = pngBytes(80_000);
    const res = await call("/v1/files", {
      method: "POST",
      token: u.accessToken,
      body: chunked([data.subarray(0, 30_000), data.subarray(30_000, 60_000), data.subarray(60_000)]),
      headers: { "content-type": "image/png" },
    });
    expectQuotaExceeded(res);
    expect(await stored(u.id)).toEqual(before);
    // A streamed upload that fits still works.
    const fits = await call("/v1/files", {
      method: "POST",
      token: u.accessToken,
      body: chunked([pngBytes(40_000)]),
      headers: { "content-type": "image/png" },
    });
    expect(fits.status, JSON.stringify(fits.body)).toBe(201);
    expect(fits.body.size).toBe(40_000);
  });

  it("a multipart/form-data upload over the remaining quota is refused too", async () => {
    const u = await signup();
    expect((await upload(u, pngBytes(150_000))).status).toBe(201);
    const before = await stored(u.id);
    const form = new FormData();
    form.set("file", new File([pngBytes(70_000)], "big.png", { type: "image/png" }));
    const req = new Request("https://outpost.test/", { method: "POST", body: form });
    const res = await call("/v1/files", {
      method: "POST",
      token: u.accessToken,
      body: await req.arrayBuffer(),
      headers: { "content-type": req.headers.get("content-type")! },
    });
    expectQuotaExceeded(res);
    expect(await stored(u.id)).toEqual(before);
  });

  // The answer is quota_exceeded, and neither an upload row nor an R2 object is left.
  it("refuses a tus creation whose Upload-Length passes the quota with 413", async () => {
    const u = await signup();
    expect((await upload(u, pngBytes(150_000))).status).toBe(201);
    const before = await stored(u.id);
    expectQuotaExceeded(await tusCreate(u, 60_000));
    expectQuotaExceeded(await tusCreate(u, 60_000, pngBytes(10_000)));
    expect(await stored(u.id)).toEqual(before);
    const ok = await tusCreate(u, 50_000);
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
  });

  // Terminating an upload frees its share; finishing one moves it to the file.
  it("counts unfinished uploads by their Upload-Length toward the quota", async () => {
    const u = await signup();
    const created = await tusCreate(u, 120_000);
    expect(created.status).toBe(201);
    const path = new URL(created.headers.get("location")!).pathname;
    // 120,000 reserved by the upload: 100,000 more would pass 200,000.
    expectQuotaExceeded(await upload(u, pngBytes(100_000)));
    expectQuotaExceeded(await tusCreate(u, 100_000));
    const other = await tusCreate(u, 80_000);
    expect(other.status).toBe(201);
    expect((await call(path, { method: "DELETE", token: u.accessToken, headers: TUS })).status).toBe(204);
    expect((await upload(u, pngBytes(100_000))).status).toBe(201);
    // The 80,000 upload completes: still 180,000 in use, now as a file.
    const otherPath = new URL(other.headers.get("location")!).pathname;
    const done = await call(otherPath, {
      method: "PATCH",
      token: u.accessToken,
      body: pngBytes(80_000),
      headers: { ...TUS, "content-type": "application/offset+octet-stream", "upload-offset": "0" },
    });
    expect(done.status).toBe(204);
    expectQuotaExceeded(await upload(u, pngBytes(30_000)));
    expect((await upload(u, pngBytes(20_000))).status).toBe(201);
  });

  it("deleting a file frees its quota", async () => {
    const u = await signup();
    const big = await upload(u, pngBytes(180_000));
    expect(big.status).toBe(201);
    expectQuotaExceeded(await upload(u, pngBytes(30_000)));
    expect((await call(`/v1/files/${big.body.id}`, { method: "DELETE", token: u.accessToken })).status).toBe(204);
    expect((await upload(u, pngBytes(30_000))).status).toBe(201);
  });

  // A streaming upload reserves the remaining quota until it ends.
  it("concurrent uploads cannot pass the quota together", async () => {
    const u = await signup();
    let started!: () => void;
    const reading = new Promise<void>((resolve) => (started = resolve));
    let finish!: (bytes: Uint8Array) => void;
    const rest = new Promise<Uint8Array>((resolve) => (finish = resolve));
    let sent = false;
    const slow = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        started();
        if (sent) return ctl.close();
        ctl.enqueue(await rest);
        sent = true;
      },
    });
    const first = call("/v1/files", {
      method: "POST",
      token: u.accessToken,
      body: slow,
      headers: { "content-type": "image/png" },
    });
    await reading; // the server reads the body only after reserving its bytes
    // The first upload has no length: it holds the whole remaining quota while it streams.
    expectQuotaExceeded(await upload(u, pngBytes(1_000)));
    expectQuotaExceeded(await tusCreate(u, 1_000));
    finish(pngBytes(10_000));
    const done = await first;
    expect(done.status, JSON.stringify(done.body)).toBe(201);
    expect(done.body.size).toBe(10_000);
    // Once it ended only its real size counts.
    expect((await upload(u, pngBytes(150_000))).status).toBe(201);
  });

  it("the usage sum reads only the owner's entries of covering indexes (no table rows, no scan)", async () => {
    const u = await signup();
    const { sql, params } = createDb(env.DB)
      .select({ used: storageUsed(u.id) })
      .from(users)
      .where(eq(users.id, u.id))
      .toSQL();
    const plan = (
      await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .bind(...params)
        .all<{ detail: string }>()
    ).results
      .map((r) => r.detail)
      .join("\n");
    expect(plan).toContain("SEARCH files USING COVERING INDEX files_owner_idx (owner_id=?)");
    expect(plan).toMatch(/SEARCH uploads USING COVERING INDEX uploads_owner_idx \(owner_id=\? AND completed_at=\?\)/);
    expect(plan).not.toMatch(/SCAN (files|uploads)/);
  });
});

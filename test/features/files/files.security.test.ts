import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { limits } from "../../../src/config";
import { createDb } from "../../../src/db";
import { AppError } from "../../../src/errors";
import { storeFile } from "../../../src/features/files/service";
import { api, expectProblem, serviceKey, signup } from "../../helpers/api";
import { bytesOf, pathOf, pngBytes, uploadPng, uploadRaw } from "./helpers";

async function signed(token: string, id: string, expiresIn = 60) {
  return (await api(`/v1/files/${id}/signed-url`, { token, body: { expiresIn } })).body.url as string;
}

describe("files: security", () => {
  it("uploading needs a user token: none → 401, garbage → 401, service key → 403", async () => {
    expectProblem(await uploadRaw(null, pngBytes(100)), 401, "unauthorized");
    expectProblem(await uploadRaw("not.a.jwt", pngBytes(100)), 401, "unauthorized");
    expectProblem(await uploadRaw(serviceKey(), pngBytes(100)), 403, "forbidden");
    expectProblem(await api("/v1/files"), 401, "unauthorized");
  });

  // Anonymous callers and strangers get 404; a garbage token gets 401.
  it("hides a private file from anonymous callers and strangers", async () => {
    const owner = await signup();
    const stranger = await signup();
    const f = await uploadPng(owner.accessToken);
    for (const token of [null, stranger.accessToken]) {
      expectProblem(await api(`/v1/files/${f.id}`, { token }), 404, "not_found");
      expectProblem(await api(`/v1/files/${f.id}/content`, { token }), 404, "not_found");
    }
    expectProblem(await api(`/v1/files/${f.id}/content`, { token: "garbage" }), 401, "unauthorized");
    expectProblem(await api(`/v1/files/${f.id}`, { token: "garbage" }), 401, "unauthorized");
  });

  it("a stranger cannot delete, sign or list someone else's files", async () => {
    const owner = await signup();
    const stranger = await signup();
    const f = await uploadPng(owner.accessToken, { visibility: "public" });
    expectProblem(await api(`/v1/files/${f.id}`, { method: "DELETE", token: stranger.accessToken }), 404, "not_found");
    expectProblem(
      await api(`/v1/files/${f.id}/signed-url`, { token: stranger.accessToken, body: {} }),
      404,
      "not_found",
    );
    expectProblem(await api(`/v1/files/${f.id}/signed-url`, { body: {} }), 401, "unauthorized");
    expect((await api("/v1/files", { token: stranger.accessToken })).body.items).toEqual([]);
    expect((await api(`/v1/files/${f.id}`)).status).toBe(200);
  });

  it("refuses a tampered signed URL with 403", async () => {
    const owner = await signup();
    const f = await uploadPng(owner.accessToken);
    const url = new URL(await signed(owner.accessToken, f.id));
    const sig = url.searchParams.get("sig")!;
    const exp = url.searchParams.get("exp")!;
    const flipped = (sig[0] === "A" ? "B" : "A") + sig.slice(1);
    expectProblem(await api(`/v1/files/${f.id}/content?exp=${exp}&sig=${flipped}`), 403, "forbidden");
    expectProblem(await api(`/v1/files/${f.id}/content?exp=${Number(exp) + 3600}&sig=${sig}`), 403, "forbidden");
    expectProblem(await api(`/v1/files/${f.id}/content?exp=${exp}`), 403, "forbidden");
    expectProblem(await api(`/v1/files/${f.id}/content?exp=${exp}&sig=${sig.slice(0, 20)}`), 403, "forbidden");
  });

  it("a signature for one file does not open another", async () => {
    const owner = await signup();
    const a = await uploadPng(owner.accessToken);
    const b = await uploadPng(owner.accessToken);
    const url = new URL(await signed(owner.accessToken, a.id));
    expectProblem(await api(`/v1/files/${b.id}/content${url.search}`), 403, "forbidden");
  });

  it("refuses an expired signed URL with 403, from the second its exp names", async () => {
    const owner = await signup();
    const f = await uploadPng(owner.accessToken);
    const url = await signed(owner.accessToken, f.id, 1);
    const exp = Number(new URL(url).searchParams.get("exp"));
    try {
      // Injected clock: the last millisecond before exp still opens it; exp itself does not.
      vi.setSystemTime(exp * 1000 - 1);
      expect((await bytesOf(pathOf(url))).status).toBe(200);
      vi.setSystemTime(exp * 1000);
      const res = await api(pathOf(url));
      expectProblem(res, 403, "forbidden");
      expect(res.body.detail).toMatch(/expired/);
    } finally {
      vi.useRealTimers();
    }
  });

  it("a stranger cannot take someone else's file as avatar", async () => {
    const owner = await signup();
    const stranger = await signup();
    const f = await uploadPng(owner.accessToken, { visibility: "public" });
    expectProblem(
      await api("/v1/me", { method: "PATCH", token: stranger.accessToken, body: { avatarFileId: f.id } }),
      400,
      "validation_failed",
    );
  });

  it("stores under a server-made key whatever the name says, and serves a safe filename", async () => {
    const u = await signup();
    const res = await uploadRaw(u.accessToken, pngBytes(100), { name: '../../f/evil"\r\nX-Injected: 1.png' });
    expect(res.status).toBe(201);
    expect(res.body.name).toBe('evil"X-Injected: 1.png');
    expect(await env.MEDIA.head(`f/${res.body.id}`)).not.toBeNull();
    const listed = await env.MEDIA.list({ prefix: "f/" });
    expect(listed.objects.every((o) => /^f\/[0-9a-f-]{36}$/.test(o.key))).toBe(true);
    const content = await bytesOf(`/v1/files/${res.body.id}/content`, { token: u.accessToken });
    expect(content.headers.get("content-disposition")).toBe(
      `inline; filename="evil_X-Injected: 1.png"; filename*=UTF-8''evil%22X-Injected%3A%201.png`,
    );
    expect(content.headers.get("x-injected")).toBeNull();
  });

  it("a deleted file's signed URL stops working", async () => {
    const owner = await signup();
    const f = await uploadPng(owner.accessToken);
    const url = await signed(owner.accessToken, f.id);
    await api(`/v1/files/${f.id}`, { method: "DELETE", token: owner.accessToken });
    expectProblem(await api(pathOf(url)), 404, "not_found");
  });

  // The answer is 401 and nothing is kept.
  it("a token that outlived its account cannot store files or start uploads", async () => {
    const u = await signup();
    expect((await api("/v1/me", { method: "DELETE", token: u.accessToken })).status).toBe(204);
    const before = (await env.MEDIA.list()).objects.length;
    expectProblem(await uploadRaw(u.accessToken, pngBytes(100)), 401, "unauthorized");
    const tus = await api("/v1/uploads", {
      method: "POST",
      token: u.accessToken,
      headers: { "tus-resumable": "1.0.0", "upload-length": "100", "upload-metadata": `filetype ${btoa("image/png")}` },
    });
    expectProblem(tus, 401, "unauthorized");
    expect((await env.MEDIA.list()).objects.length).toBe(before);
    const rows = await env.DB.prepare(
      "SELECT (SELECT count(*) FROM files WHERE owner_id = ?1) + " +
        "(SELECT count(*) FROM uploads WHERE owner_id = ?1) AS n",
    )
      .bind(u.id)
      .first<{ n: number }>();
    expect(rows?.n).toBe(0);
  });

  it("bytes still streaming while the account is deleted do not survive it", async () => {
    const u = await signup();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const head = pngBytes(100);
    let sent = false;
    let firstRead!: () => void;
    const reading = new Promise<void>((r) => (firstRead = r));
    // highWaterMark 0: the stream is pulled only when storeFile reads it, which it does once the
    // pending row is stored.
    const body = new ReadableStream<Uint8Array>(
      {
        async pull(ctl) {
          if (!sent) {
            sent = true;
            ctl.enqueue(head);
            firstRead();
            return;
          }
          await released;
          ctl.enqueue(new Uint8Array(1000));
          ctl.close();
        },
      },
      { highWaterMark: 0 },
    );
    const db = createDb(env.DB);
    const upload = storeFile(
      env,
      db,
      limits.storageQuotaBytes,
      { ownerId: u.id, name: "late.png", contentType: "image/png", visibility: "private" },
      body,
      null,
    ).then(
      (row) => row.id,
      (e: unknown) => (e instanceof AppError ? e.code : String(e)),
    );
    await reading;
    const n = await env.DB.prepare("SELECT count(*) AS n FROM files WHERE owner_id = ? AND status = 'pending'")
      .bind(u.id)
      .first<{ n: number }>();
    expect(n?.n).toBe(1);
    // `settle`: the deletion's R2 work (waitUntil) is done when this returns.
    expect((await api("/v1/me", { method: "DELETE", token: u.accessToken, settle: true })).status).toBe(204);
    release();
    expect(await upload).toBe("unauthorized");
    const objects = (await env.MEDIA.list({ prefix: "f/" })).objects.map((o) => o.key);
    const known = (
      await env.DB.prepare("SELECT object_key AS k FROM file_trash UNION SELECT object_key FROM files").all<{
        k: string;
      }>()
    ).results.map((r) => r.k);
    // Every object in R2 has a file row or is queued for the cleanup task: nothing is left untracked.
    expect(objects.filter((k) => !known.includes(k))).toEqual([]);
  });
});

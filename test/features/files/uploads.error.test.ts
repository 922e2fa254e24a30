import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { createDb } from "../../../src/db";
import { uploads } from "../../../src/db/schema";
import { AppError } from "../../../src/errors";
import { appendToUpload } from "../../../src/features/files/tus/service";
import { api, expectProblem, signup } from "../../helpers/api";
import { bytesOf, pngBytes } from "./helpers";

const TUS = { "tus-resumable": "1.0.0" };
const b64 = (s: string) => btoa(s);

async function create(token: string, length: number, type = "image/png") {
  const res = await api("/v1/uploads", {
    method: "POST",
    token,
    headers: {
      ...TUS,
      "upload-length": String(length),
      "upload-metadata": `filename ${b64("a")},filetype ${b64(type)}`,
    },
  });
  return new URL(res.headers.get("location")!).pathname;
}
const patch = (
  token: string,
  path: string,
  offset: number,
  body: Uint8Array | string,
  headers: Record<string, string> = {},
) =>
  api(path, {
    method: "PATCH",
    token,
    raw: body,
    headers: { ...TUS, "content-type": "application/offset+octet-stream", "upload-offset": String(offset), ...headers },
  });

describe("uploads (tus): errors", () => {
  it("refuses another protocol version with 412 and Tus-Version", async () => {
    const u = await signup();
    const res = await api("/v1/uploads", {
      method: "POST",
      token: u.accessToken,
      headers: { "tus-resumable": "0.2.2", "upload-length": "10" },
    });
    expectProblem(res, 412, "precondition_failed");
    expect(res.headers.get("tus-version")).toBe("1.0.0");
    expect(res.headers.get("tus-resumable")).toBe("1.0.0");
  });

  it("requires Upload-Length (deferred length is not offered)", async () => {
    const u = await signup();
    expectProblem(await api("/v1/uploads", { method: "POST", token: u.accessToken, headers: TUS }), 400, "bad_request");
    expectProblem(
      await api("/v1/uploads", {
        method: "POST",
        token: u.accessToken,
        headers: { ...TUS, "upload-defer-length": "1" },
      }),
      400,
      "bad_request",
    );
    expectProblem(
      await api("/v1/uploads", { method: "POST", token: u.accessToken, headers: { ...TUS, "upload-length": "-5" } }),
      400,
      "bad_request",
    );
  });

  it("refuses an Upload-Length over Tus-Max-Size with 413", async () => {
    const u = await signup();
    const res = await api("/v1/uploads", {
      method: "POST",
      token: u.accessToken,
      headers: { ...TUS, "upload-length": String(6 * 1024 ** 3) },
    });
    expectProblem(res, 413, "payload_too_large");
  });

  it("refuses malformed metadata, a bad visibility and unknown media types", async () => {
    const u = await signup();
    expectProblem(
      await api("/v1/uploads", {
        method: "POST",
        token: u.accessToken,
        headers: { ...TUS, "upload-length": "1", "upload-metadata": "filename !!notbase64" },
      }),
      400,
      "bad_request",
    );
    expectProblem(
      await api("/v1/uploads", {
        method: "POST",
        token: u.accessToken,
        headers: { ...TUS, "upload-length": "1", "upload-metadata": `visibility ${b64("everyone")}` },
      }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api("/v1/uploads", {
        method: "POST",
        token: u.accessToken,
        headers: { ...TUS, "upload-length": "1", "upload-metadata": `filetype ${b64("image/x-unknown")}` },
      }),
      415,
      "unsupported_media_type",
    );
  });

  it("refuses a creation-with-upload body longer than Upload-Length (413) and keeps no upload", async () => {
    const u = await signup();
    const res = await api("/v1/uploads", {
      method: "POST",
      token: u.accessToken,
      raw: pngBytes(200),
      headers: {
        ...TUS,
        "upload-length": "100",
        "upload-metadata": `filetype ${b64("image/png")}`,
        "content-type": "application/offset+octet-stream",
      },
    });
    expectProblem(res, 413, "payload_too_large");
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM uploads WHERE owner_id = ?")
      .bind(u.id)
      .first<{ n: number }>();
    expect(rows?.n).toBe(0);
  });

  it("answers a wrong Upload-Offset with 409 and the real offset", async () => {
    const u = await signup();
    const path = await create(u.accessToken, 1000);
    expect((await patch(u.accessToken, path, 0, pngBytes(100))).status).toBe(204);
    const res = await patch(u.accessToken, path, 50, pngBytes(10));
    expectProblem(res, 409, "conflict");
    expect(res.headers.get("upload-offset")).toBe("100");
  });

  // 415 for a type other than application/offset+octet-stream, 400 without Upload-Offset,
  // 413 for bytes past the upload's length.
  it("refuses a PATCH with a wrong type, no Upload-Offset or too many bytes", async () => {
    const u = await signup();
    const path = await create(u.accessToken, 100);
    expectProblem(
      await patch(u.accessToken, path, 0, pngBytes(10), { "content-type": "application/octet-stream" }),
      415,
      "unsupported_media_type",
    );
    expectProblem(
      await api(path, {
        method: "PATCH",
        token: u.accessToken,
        raw: pngBytes(10),
        headers: { ...TUS, "content-type": "application/offset+octet-stream" },
      }),
      400,
      "bad_request",
    );
    expectProblem(await patch(u.accessToken, path, 0, pngBytes(101)), 413, "payload_too_large");
  });

  it("refuses bytes that contradict the declared type (415) and drops the upload", async () => {
    const u = await signup();
    const path = await create(u.accessToken, 200);
    const res = await patch(
      u.accessToken,
      path,
      0,
      "#!/bin/sh\necho this is not a png at all, just a script pretending".padEnd(200, "."),
    );
    expectProblem(res, 415, "unsupported_media_type");
    expect((await api(path, { method: "HEAD", token: u.accessToken, headers: TUS })).status).toBe(404);
  });

  it("checks the signature even when the first bytes arrive in tiny PATCHes", async () => {
    const u = await signup();
    const path = await create(u.accessToken, 200);
    expect((await patch(u.accessToken, path, 0, new Uint8Array([0x89, 0x50]))).status).toBe(204);
    const res = await patch(
      u.accessToken,
      path,
      2,
      new TextEncoder().encode("this continues as plain text, not PNG; more than sixty-four bytes of it"),
    );
    expectProblem(res, 415, "unsupported_media_type");
  });

  it("answers an expired upload with 410", async () => {
    const u = await signup();
    const path = await create(u.accessToken, 100);
    await env.DB.prepare("UPDATE uploads SET expires_at = ? WHERE id = ?")
      .bind(new Date(Date.now() - 1000).toISOString(), path.split("/").pop())
      .run();
    expectProblem(await api(path, { method: "GET", token: u.accessToken, headers: TUS }), 410, "gone");
    expectProblem(await patch(u.accessToken, path, 0, pngBytes(10)), 410, "gone");
  });

  it("answers an unknown or malformed upload id with 404 / 400", async () => {
    const u = await signup();
    expectProblem(
      await api("/v1/uploads/0190aaaa-0000-7000-8000-000000000000", { token: u.accessToken, headers: TUS }),
      404,
      "not_found",
    );
    expectProblem(await api("/v1/uploads/../../files", { token: u.accessToken, headers: TUS }), 404, "not_found");
    expectProblem(await api("/v1/uploads/not-an-id", { token: u.accessToken, headers: TUS }), 400, "validation_failed");
  });
});

describe("uploads (tus): concurrent PATCHes", () => {
  it("the losing PATCH at the same offset leaves the winner's buffered bytes in place", async () => {
    const u = await signup();
    const path = await create(u.accessToken, 1000);
    const id = path.split("/").pop()!;
    const source = pngBytes(1000);
    expect((await patch(u.accessToken, path, 0, source.subarray(0, 100))).status).toBe(204);
    const db = createDb(env.DB);
    const stale = (await db.select().from(uploads).where(eq(uploads.id, id)).get())!;

    // Two requests at offset 100 with the same chunk (a client retry racing its first try):
    // both read the buffered tail, then the first finishes before the second's body arrives.
    let releaseB!: () => void;
    const bArrived = new Promise<void>((r) => (releaseB = r));
    const chunk = source.subarray(100, 150);
    const bodyA = new ReadableStream<Uint8Array>({
      start: (ctl) => {
        ctl.enqueue(chunk.slice());
        ctl.close();
      },
    });
    const bodyB = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        await bArrived;
        ctl.enqueue(chunk.slice());
        ctl.close();
      },
    });
    const b = appendToUpload(env, db, stale, bodyB).then(
      () => "ok",
      (e: unknown) => (e instanceof AppError ? e.code : String(e)),
    );
    const a = await appendToUpload(env, db, stale, bodyA);
    expect(a.received).toBe(150);
    releaseB();
    expect(await b).toBe("conflict");

    // The upload goes on from the winner's offset and completes with the right bytes.
    const head = await api(path, { method: "HEAD", token: u.accessToken, headers: { "tus-resumable": "1.0.0" } });
    expect(head.headers.get("upload-offset")).toBe("150");
    const rest = await patch(u.accessToken, path, 150, source.subarray(150));
    expect(rest.status, rest.text).toBe(204);
    const fileId = rest.headers.get("outpost-file-id")!;
    expect((await bytesOf(`/v1/files/${fileId}/content`, { token: u.accessToken })).bytes).toEqual(source);
    expect((await env.MEDIA.list({ prefix: `u/${id}/` })).objects).toHaveLength(0);
  });

  // The loser's answer is a 409 conflict, not a 500.
  it("of two final PATCHes at one offset, the loser gets 409 and the file is whole", async () => {
    const u = await signup();
    const path = await create(u.accessToken, 1000);
    const id = path.split("/").pop()!;
    const source = pngBytes(1000);
    expect((await patch(u.accessToken, path, 0, source.subarray(0, 100))).status).toBe(204);
    const db = createDb(env.DB);
    const stale = (await db.select().from(uploads).where(eq(uploads.id, id)).get())!;
    let releaseB!: () => void;
    const bArrived = new Promise<void>((r) => (releaseB = r));
    const chunk = source.subarray(100);
    const bodyA = new ReadableStream<Uint8Array>({
      start: (ctl) => {
        ctl.enqueue(chunk.slice());
        ctl.close();
      },
    });
    const bodyB = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        await bArrived;
        ctl.enqueue(chunk.slice());
        ctl.close();
      },
    });
    const b = appendToUpload(env, db, stale, bodyB).then(
      () => "ok",
      (e: unknown) => (e instanceof AppError ? e.code : String(e)),
    );
    const a = await appendToUpload(env, db, stale, bodyA);
    expect(a.completedAt).not.toBeNull();
    releaseB();
    expect(await b).toBe("conflict");
    expect((await bytesOf(`/v1/files/${a.fileId}/content`, { token: u.accessToken })).bytes).toEqual(source);
  });

  it("a final PATCH whose account is deleted between R2 and D1 gets a 4xx, not 500", async () => {
    const u = await signup();
    const path = await create(u.accessToken, 100);
    const id = path.split("/").pop()!;
    const db = createDb(env.DB);
    const up = (await db.select().from(uploads).where(eq(uploads.id, id)).get())!;
    const media = env.MEDIA;
    // The R2 multipart completion succeeds, then the account goes before the D1 batch runs.
    const racing = {
      ...env,
      MEDIA: {
        get: media.get.bind(media),
        put: media.put.bind(media),
        head: media.head.bind(media),
        delete: media.delete.bind(media),
        list: media.list.bind(media),
        resumeMultipartUpload: (key: string, uploadId: string) => {
          const mp = media.resumeMultipartUpload(key, uploadId);
          return {
            uploadPart: (n: number, b: Uint8Array) => mp.uploadPart(n, b),
            abort: () => mp.abort(),
            complete: async (parts: R2UploadedPart[]) => {
              const done = await mp.complete(parts);
              expect((await api("/v1/me", { method: "DELETE", token: u.accessToken, settle: true })).status).toBe(204);
              return done;
            },
          };
        },
      } as unknown as R2Bucket,
    } as Env;
    const body = new ReadableStream<Uint8Array>({
      start: (ctl) => {
        ctl.enqueue(pngBytes(100));
        ctl.close();
      },
    });
    const outcome = await appendToUpload(racing, db, up, body).then(
      () => "ok",
      (e: unknown) => (e instanceof AppError ? e.status : String(e)),
    );
    expect(outcome).toBe(409);
    expect(await env.MEDIA.head(up.objectKey)).toBeNull();
  });
});

import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AppError } from "../../../src/errors";
import { Meter } from "../../../src/features/files/storage";
import { api, expectProblem, signup } from "../../helpers/api";
import { jpegBytes, pngBytes, uploadPng, uploadRaw } from "./helpers";

describe("files: errors", () => {
  it("refuses bytes that contradict a declared image type with 415, and stores nothing", async () => {
    const u = await signup();
    expectProblem(await uploadRaw(u.accessToken, jpegBytes(500), { type: "image/png" }), 415, "unsupported_media_type");
    expectProblem(
      await uploadRaw(u.accessToken, "GIF89a? no: <svg onload=alert(1)>".padEnd(200), { type: "image/jpeg" }),
      415,
      "unsupported_media_type",
    );
    expectProblem(
      await uploadRaw(u.accessToken, new Uint8Array(0), { type: "image/png" }),
      415,
      "unsupported_media_type",
    );
    const list = await api("/v1/files", { token: u.accessToken });
    expect(list.body.items).toEqual([]);
    const pending = await api("/v1/files", { token: u.accessToken });
    expect(pending.body.nextCursor).toBeNull();
  });

  it("refuses a lie about video and audio too", async () => {
    const u = await signup();
    expectProblem(await uploadRaw(u.accessToken, pngBytes(500), { type: "video/mp4" }), 415, "unsupported_media_type");
    expectProblem(await uploadRaw(u.accessToken, pngBytes(500), { type: "audio/mpeg" }), 415, "unsupported_media_type");
  });

  it("refuses media types whose signature it cannot check (e.g. SVG) with 415", async () => {
    const u = await signup();
    expectProblem(
      await uploadRaw(u.accessToken, "<svg xmlns='http://www.w3.org/2000/svg'/>", { type: "image/svg+xml" }),
      415,
      "unsupported_media_type",
    );
  });

  it("refuses a body over the size limit by its Content-Length with 413, before reading it", async () => {
    const u = await signup();
    const body = new FixedLengthStream(100 * 1024 * 1024 + 1);
    const writer = body.writable.getWriter();
    void writer.write(pngBytes(64)).catch(() => {});
    const res = await exports.default.fetch(
      new Request("https://outpost.test/v1/files", {
        method: "POST",
        headers: { authorization: `Bearer ${u.accessToken}`, "content-type": "image/png" },
        body: body.readable,
      }),
    );
    expect(res.status).toBe(413);
    expect((await res.json<{ code: string }>()).code).toBe("payload_too_large");
    await writer.abort().catch(() => {});
  });

  it("counts streamed bytes against the limit when the length is unknown", async () => {
    const meter = new Meter(1000, false);
    const src = new ReadableStream<Uint8Array>({
      start(ctl) {
        for (let i = 0; i < 5; i++) ctl.enqueue(new Uint8Array(300));
        ctl.close();
      },
    });
    const err = await new Response(src.pipeThrough(meter.stream)).arrayBuffer().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe("payload_too_large");
    expect(meter.error?.code).toBe("payload_too_large");
  });

  it("rejects a bad visibility or an unknown query field with validation_failed", async () => {
    const u = await signup();
    expectProblem(
      await api("/v1/files?visibility=world", {
        method: "POST",
        token: u.accessToken,
        raw: pngBytes(100),
        headers: { "content-type": "image/png" },
      }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api("/v1/files?owner=someone", {
        method: "POST",
        token: u.accessToken,
        raw: pngBytes(100),
        headers: { "content-type": "image/png" },
      }),
      400,
      "validation_failed",
    );
  });

  it("rejects form uploads without a `file` field, without a boundary, or cut short", async () => {
    const u = await signup();
    const form = new FormData();
    form.set("other", "x");
    expectProblem(
      await api("/v1/files", { method: "POST", token: u.accessToken, raw: form }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api("/v1/files", {
        method: "POST",
        token: u.accessToken,
        raw: "x",
        headers: { "content-type": "multipart/form-data" },
      }),
      400,
      "bad_request",
    );
    const truncated =
      '--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n' +
      `Content-Type: application/octet-stream\r\n\r\n${"x".repeat(100)}`;
    expectProblem(
      await api("/v1/files", {
        method: "POST",
        token: u.accessToken,
        raw: truncated,
        headers: { "content-type": "multipart/form-data; boundary=b" },
      }),
      400,
      "bad_request",
    );
  });

  it("answers unknown and malformed ids with 404 and 400", async () => {
    const u = await signup();
    expectProblem(
      await api("/v1/files/0190aaaa-0000-7000-8000-000000000000", { token: u.accessToken }),
      404,
      "not_found",
    );
    expectProblem(
      await api("/v1/files/0190aaaa-0000-7000-8000-000000000000/content", { token: u.accessToken }),
      404,
      "not_found",
    );
    expectProblem(
      await api("/v1/files/0190aaaa-0000-7000-8000-000000000000", { method: "DELETE", token: u.accessToken }),
      404,
      "not_found",
    );
    expectProblem(await api("/v1/files/nope", { token: u.accessToken }), 400, "validation_failed");
    expectProblem(await api("/v1/files?cursor=zzz", { token: u.accessToken }), 400, "validation_failed");
  });

  it("bounds signed URL lifetimes and rejects unknown body fields", async () => {
    const u = await signup();
    const f = await uploadPng(u.accessToken);
    expectProblem(
      await api(`/v1/files/${f.id}/signed-url`, { token: u.accessToken, body: { expiresIn: 8 * 24 * 3600 } }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api(`/v1/files/${f.id}/signed-url`, { token: u.accessToken, body: { expiresIn: 0 } }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api(`/v1/files/${f.id}/signed-url`, { token: u.accessToken, body: { path: "/etc" } }),
      400,
      "validation_failed",
    );
  });

  it("refuses a file that is not the caller's as avatar", async () => {
    const u = await signup();
    const res = await api("/v1/me", {
      method: "PATCH",
      token: u.accessToken,
      body: { avatarFileId: "0190aaaa-0000-7000-8000-000000000000" },
    });
    expectProblem(res, 400, "validation_failed");
  });

  it("an upload cut off midway is not replayed to a retry with the same Idempotency-Key", async () => {
    const u = await signup();
    const bytes = pngBytes(1000);
    const send = async (cutAt: number | null) => {
      const body = new FixedLengthStream(bytes.length);
      const writer = body.writable.getWriter();
      const res = exports.default.fetch(
        new Request("https://outpost.test/v1/files?name=retry.png", {
          method: "POST",
          headers: {
            authorization: `Bearer ${u.accessToken}`,
            "content-type": "image/png",
            "idempotency-key": "upload-1",
          },
          body: body.readable,
        }),
      );
      if (cutAt === null) {
        await writer.write(bytes);
        await writer.close();
      } else {
        await writer.write(bytes.slice(0, cutAt));
        await writer.abort(new Error("network lost")).catch(() => {});
      }
      const r = await res;
      return { status: r.status, body: (await r.json()) as { code?: string; size?: number } };
    };
    const cut = await send(100);
    expect(cut.status).toBe(400);
    const retry = await send(null);
    expect(retry.status).toBe(201);
    expect(retry.body.size).toBe(1000);
    const again = await send(null);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(retry.body);
  });
});

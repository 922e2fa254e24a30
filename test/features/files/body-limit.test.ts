/**
 * The 1 MiB JSON body limit covers every route but the ones that stream bytes to R2:
 * POST /v1/files, tus creation (POST /v1/uploads, creation-with-upload) and tus PATCH.
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, expectProblem, signup } from "../../helpers/api";
import { bytesOf, pngBytes, uploadPng, uploadRaw } from "./helpers";

const MiB = 1024 * 1024;
const TUS = { "tus-resumable": "1.0.0" };

/** Valid JSON of about `size` bytes: `{"expiresIn":60}` padded with whitespace, which JSON allows. */
const paddedJson = (size: number) => `{"expiresIn":60${" ".repeat(size)}}`;

/** A body without Content-Length (chunked), so only the streaming count can stop it. */
function chunked(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(ctl) {
      if (at >= bytes.length) return ctl.close();
      ctl.enqueue(bytes.subarray(at, at + 64 * 1024));
      at += 64 * 1024;
    },
  });
}

describe("JSON body limit on routes under /v1/files and /v1/uploads", () => {
  // Checked both by Content-Length and with a streamed body of unknown length.
  it("a 3 MiB signed-url body is 413 payload_too_large", async () => {
    const u = await signup();
    const file = await uploadPng(u.accessToken);
    const path = `/v1/files/${file.id}/signed-url`;
    const small = await api(path, {
      method: "POST",
      token: u.accessToken,
      raw: paddedJson(100),
      headers: { "content-type": "application/json" },
    });
    expect(small.status, small.text).toBe(200);

    expectProblem(
      await api(path, {
        method: "POST",
        token: u.accessToken,
        raw: paddedJson(3 * MiB),
        headers: { "content-type": "application/json" },
      }),
      413,
      "payload_too_large",
    );

    const res = await exports.default.fetch(
      new Request(`https://outpost.test${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${u.accessToken}`, "content-type": "application/json" },
        body: chunked(paddedJson(3 * MiB)),
      }),
    );
    expect(res.status).toBe(413);
    expect((await res.json<{ code: string }>()).code).toBe("payload_too_large");
  });

  it("other non-streaming routes under the prefixes are capped too (DELETE /v1/files/:id)", async () => {
    const u = await signup();
    const file = await uploadPng(u.accessToken);
    expectProblem(
      await api(`/v1/files/${file.id}`, {
        method: "DELETE",
        token: u.accessToken,
        raw: "x".repeat(2 * MiB),
        headers: { "content-type": "application/octet-stream" },
      }),
      413,
      "payload_too_large",
    );
    // The file is still there: the refused request did nothing.
    expect((await api(`/v1/files/${file.id}`, { token: u.accessToken })).status).toBe(200);
  });

  // Covers POST /v1/files, tus creation-with-upload and tus PATCH.
  it("uploads larger than 1 MiB still stream past the JSON body limit", async () => {
    const u = await signup();
    const raw = pngBytes(3 * MiB + 5);
    const posted = await uploadRaw(u.accessToken, raw, { name: "big.png" });
    expect(posted.status, posted.text).toBe(201);
    expect(posted.body.size).toBe(raw.length);

    const source = pngBytes(4 * MiB + 11);
    const first = source.subarray(0, 2 * MiB);
    const created = await api("/v1/uploads", {
      method: "POST",
      token: u.accessToken,
      raw: first,
      headers: {
        ...TUS,
        "upload-length": String(source.length),
        "content-type": "application/offset+octet-stream",
        "upload-metadata": `filename ${btoa("t.png")},filetype ${btoa("image/png")}`,
      },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.headers.get("upload-offset")).toBe(String(first.length));
    const path = new URL(created.headers.get("location")!).pathname;
    const patched = await api(path, {
      method: "PATCH",
      token: u.accessToken,
      raw: source.subarray(first.length),
      headers: { ...TUS, "content-type": "application/offset+octet-stream", "upload-offset": String(first.length) },
    });
    expect(patched.status, patched.text).toBe(204);
    const fileId = patched.headers.get("outpost-file-id")!;
    const content = await bytesOf(`/v1/files/${fileId}/content`, { token: u.accessToken });
    expect(content.bytes.length).toBe(source.length);
    expect(content.bytes.every((b, i) => b === source[i])).toBe(true);
  });
});

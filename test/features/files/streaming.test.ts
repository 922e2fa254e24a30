import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { signup } from "../../helpers/api";

const MB50 = 50 * 1000 * 1000;
const CHUNK = 64 * 1024;

/** Deterministic bytes for position `at` (so the sender never holds more than one chunk). */
function chunkAt(at: number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = ((at + i) * 2654435761) >>> 24;
  return b;
}

/** A pull stream of `total` bytes in 64 KiB chunks, hashing what it hands out. */
function generated(total: number) {
  const digest = new crypto.DigestStream("SHA-256");
  const hasher = digest.getWriter();
  let at = 0;
  let maxChunk = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(ctl) {
        if (at >= total) {
          await hasher.close();
          ctl.close();
          return;
        }
        const n = Math.min(CHUNK, total - at);
        const c = chunkAt(at, n);
        await hasher.write(c);
        maxChunk = Math.max(maxChunk, n);
        at += n;
        ctl.enqueue(c);
      },
    },
    { highWaterMark: 0 },
  );
  return {
    stream,
    sha256: async () => [...new Uint8Array(await digest.digest)].map((x) => x.toString(16).padStart(2, "0")).join(""),
    maxChunk: () => maxChunk,
  };
}

async function sha256OfBody(body: ReadableStream<Uint8Array>): Promise<{ hex: string; bytes: number }> {
  const d = new crypto.DigestStream("SHA-256");
  let bytes = 0;
  await body
    .pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform: (c, ctl) => {
          bytes += c.byteLength;
          ctl.enqueue(c);
        },
      }),
    )
    .pipeTo(d);
  return { hex: [...new Uint8Array(await d.digest)].map((x) => x.toString(16).padStart(2, "0")).join(""), bytes };
}

async function post(token: string, body: ReadableStream<Uint8Array>, type = "application/octet-stream") {
  const res = await exports.default.fetch(
    new Request("https://outpost.test/v1/files?name=big.bin", {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": type },
      body,
    }),
  );
  return { status: res.status, body: (await res.json()) as { id: string; size: number; sha256: string } };
}

describe("files: streaming uploads", () => {
  it("streams 50 MB of unknown length (64 KiB chunks) into R2 in parts; size and SHA-256 match", async () => {
    const u = await signup();
    const src = generated(MB50);
    const t0 = Date.now();
    const res = await post(u.accessToken, src.stream);
    const ms = Date.now() - t0;
    expect(res.status).toBe(201);
    expect(res.body.size).toBe(MB50);
    expect(res.body.sha256).toBe(await src.sha256());
    expect(src.maxChunk()).toBe(CHUNK);
    // A multipart object's etag ends in -<parts>: 50 MB in 5 MiB parts is 10 parts.
    expect((await env.MEDIA.head(`f/${res.body.id}`))?.etag).toMatch(/-10$/);
    console.log(`50 MB chunked upload: ${ms} ms`);

    const back = await exports.default.fetch(
      new Request(`https://outpost.test/v1/files/${res.body.id}/content`, {
        headers: { authorization: `Bearer ${u.accessToken}` },
      }),
    );
    expect(back.status).toBe(200);
    expect(await sha256OfBody(back.body!)).toEqual({ hex: res.body.sha256, bytes: MB50 });
  }, 120_000);

  it("streams 50 MB of known length (Content-Length) in one R2 put; size and SHA-256 match", async () => {
    const u = await signup();
    const src = generated(MB50);
    const fixed = new FixedLengthStream(MB50);
    const t0 = Date.now();
    const [res] = await Promise.all([post(u.accessToken, fixed.readable), src.stream.pipeTo(fixed.writable)]);
    const ms = Date.now() - t0;
    expect(res.status).toBe(201);
    expect(res.body.size).toBe(MB50);
    expect(res.body.sha256).toBe(await src.sha256());
    expect((await env.MEDIA.head(`f/${res.body.id}`))?.etag).toMatch(/^[0-9a-f]{32}$/);
    console.log(`50 MB fixed-length upload: ${ms} ms`);
  }, 120_000);

  it("streams a 12 MB multipart/form-data file field whose bytes nearly contain the boundary", async () => {
    const u = await signup();
    const boundary = "----outpost-boundary-7f3a";
    const enc = new TextEncoder();
    // The payload repeats a near-miss of the delimiter, so the parser must hold back and release partial matches.
    const unit = enc.encode(`\r\n--${boundary.slice(0, -1)}X`);
    const size = 12 * 1000 * 1000;
    const file = new Uint8Array(size);
    for (let i = 0; i < size; i++) file[i] = unit[i % unit.length]!;
    const parts = [
      enc.encode(`--${boundary}\r\nContent-Disposition: form-data; name="caption"\r\n\r\nhello\r\n`),
      enc.encode(
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="near.bin"\r\n` +
          "Content-Type: application/octet-stream\r\n\r\n",
      ),
      file,
      enc.encode(`\r\n--${boundary}--\r\n`),
    ];
    const whole = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      whole.set(p, at);
      at += p.length;
    }
    let sent = 0;
    const body = new ReadableStream<Uint8Array>(
      {
        pull(ctl) {
          if (sent >= whole.length) return ctl.close();
          const n = Math.min(CHUNK - 7, whole.length - sent); // odd chunks so delimiters straddle them
          ctl.enqueue(whole.slice(sent, sent + n));
          sent += n;
        },
      },
      { highWaterMark: 0 },
    );
    const res = await post(u.accessToken, body, `multipart/form-data; boundary=${boundary}`);
    expect(res.status).toBe(201);
    expect(res.body.size).toBe(size);
    const expected = [...new Uint8Array(await crypto.subtle.digest("SHA-256", file))]
      .map((x) => x.toString(16).padStart(2, "0"))
      .join("");
    expect(res.body.sha256).toBe(expected);
  }, 60_000);
});

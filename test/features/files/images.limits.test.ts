/**
 * Image bombs (issue 23, item 2): an image over `limits.imageMaxPixels`, by its header, is never
 * handed to the Images binding (thumbnails: 413; the after-upload job: no dimensions); concurrent
 * first requests for one rendition share a single transform.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { limits } from "../../../src/config";
import { headerSize } from "../../../src/features/files/dimensions";
import { media } from "../../fixtures";
import { signup, type TestUser } from "../../helpers/api";
import { crc32, makePng, webpSize } from "./image-fixtures";
import { call, countingEnv, resetCounts, runJobs, upload } from "./image-helpers";

let user: TestUser;
beforeAll(async () => {
  user = await signup();
});

/** A real PNG whose IHDR claims `w`×`h` (CRC fixed): a decoder would allocate w×h pixels. */
async function pngClaiming(w: number, h: number): Promise<Uint8Array> {
  const png = (await makePng(8, 8)).slice();
  const dv = new DataView(png.buffer);
  dv.setUint32(16, w);
  dv.setUint32(20, h);
  dv.setUint32(29, crc32(png.subarray(12, 29)));
  return png;
}

/** The fixture JPEG with its SOF claiming `w`×`h`. */
function jpegClaiming(w: number, h: number): Uint8Array {
  const b = media.jpeg.slice();
  const dv = new DataView(b.buffer);
  let at = 2;
  while (!(b[at + 1]! >= 0xc0 && b[at + 1]! <= 0xc2)) at += 2 + dv.getUint16(at + 2);
  dv.setUint16(at + 5, h);
  dv.setUint16(at + 7, w);
  return b;
}

describe("image size from the header", () => {
  it("reads width and height of real JPEG, PNG, WebP, GIF, HEIC and AVIF files without decoding", () => {
    for (const name of ["jpeg", "png", "webp", "gif", "avif"] as const)
      expect(headerSize(media[name]), name).toEqual({ width: 64, height: 48 });
    // HEIC: the largest extent of its items (the coded 64×64 image behind the 64×48 picture).
    expect(headerSize(media.heic)).toEqual({ width: 64, height: 64 });
    expect(headerSize(new Uint8Array([1, 2, 3]))).toBeNull();
  });
});

describe("image bombs", () => {
  it(`the default limit is 40 MP: ${limits.imageMaxPixels}`, () => {
    expect(limits.imageMaxPixels).toBe(40_000_000);
  });

  it("a thumbnail of an image over the pixel limit → 413 before any transform (PNG and JPEG)", async () => {
    const { env: e, counts } = countingEnv();
    for (const [bytes, type] of [
      [await pngClaiming(8000, 6000), "image/png"],
      [jpegClaiming(10000, 10000), "image/jpeg"],
    ] as const) {
      const file = await upload(e, user.accessToken, bytes, type, "private");
      resetCounts(counts);
      const res = await call(e, `/v1/files/${file.id}/content?thumb=sm`, { token: user.accessToken });
      expect(res.status, type).toBe(413);
      expect(res.json.code).toBe("payload_too_large");
      expect(counts.transforms).toBe(0);
      expect(counts.infos).toBe(0);
      expect(counts.r2Puts).toBe(0);
    }
  });

  it("just under the limit is transformed", async () => {
    const { env: e, counts } = countingEnv();
    const file = await upload(e, user.accessToken, await makePng(200, 100), "image/png");
    resetCounts(counts);
    expect((await call(e, `/v1/files/${file.id}/content?thumb=sm`)).status).toBe(200);
    expect(counts.transforms).toBe(1);
  });

  it("the after-upload job never decodes an image over the limit: no dimensions, acknowledged", async () => {
    const { env: e, counts, jobs } = countingEnv();
    const file = await upload(e, user.accessToken, await pngClaiming(9000, 9000), "image/png", "private");
    resetCounts(counts);
    await runJobs(e, jobs);
    expect(counts.transforms).toBe(0);
    expect(counts.infos).toBe(0);
    const meta = await call(e, `/v1/files/${file.id}`, { token: user.accessToken });
    expect(meta.json).toMatchObject({ width: null, height: null, placeholder: null });
  });
});

describe("one transform in flight per file and rendition", () => {
  it("concurrent first requests for one thumbnail share a single transform and a single put", async () => {
    const { env: e, counts } = countingEnv();
    const file = await upload(e, user.accessToken, await makePng(320, 240), "image/png");
    resetCounts(counts);
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => call(e, `/v1/files/${file.id}/content?thumb=sm`)));
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(webpSize(r.bytes)).toEqual({ width: 160, height: 120 });
      expect(r.bytes).toEqual(results[0]!.bytes);
    }
    expect(counts.transforms).toBe(1);
    expect(counts.r2Puts).toBe(1);
    // Another rendition of the same file is its own transform.
    resetCounts(counts);
    await Promise.all([1, 2].map(() => call(e, `/v1/files/${file.id}/content?thumb=sq`)));
    expect(counts.transforms).toBe(1);
  });
});

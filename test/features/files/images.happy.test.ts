/**
 * Images (issue 16): thumbnails of presets (real WebP/AVIF bytes of the right size, made once and
 * then read from R2), dimensions with the EXIF orientation applied and a ThumbHash placeholder
 * (the after-upload job, for POST and tus alike), GPS removed from public images, renditions
 * deleted with the file and kept out of the quota.
 */
import { env } from "cloudflare:workers";
import { thumbHashToApproximateAspectRatio } from "thumbhash";
import { beforeAll, describe, expect, it } from "vitest";
import { signup, type TestUser } from "../../helpers/api";
import { hasGps, imageInfo, jpegOrientation, makeJpeg, makePng, webpSize } from "./image-fixtures";
import { call, countingEnv, resetCounts, runJobs, tusCreate, tusPatch, upload } from "./image-helpers";

let user: TestUser;
beforeAll(async () => {
  user = await signup();
});

describe("thumbnails", () => {
  // WebP by default, AVIF when Accept prefers it; the sq preset is cropped square.
  it("renders each PNG preset at its size, as WebP or AVIF per Accept", async () => {
    const { env: e } = countingEnv();
    const file = await upload(e, user.accessToken, await makePng(400, 300), "image/png");
    const sm = await call(e, `/v1/files/${file.id}/content?thumb=sm`);
    expect(sm.status).toBe(200);
    expect(sm.headers.get("content-type")).toBe("image/webp");
    // Varies by Accept (the format), and by Origin as every answer to a request without one does.
    expect(sm.headers.get("vary")).toBe("Accept, Origin");
    expect(webpSize(sm.bytes)).toEqual({ width: 160, height: 120 });
    const md = await call(e, `/v1/files/${file.id}/content?thumb=md`);
    // scale-down never enlarges: a 400 px image stays 400 px in the 640 px preset.
    expect(webpSize(md.bytes)).toEqual({ width: 400, height: 300 });
    const sq = await call(e, `/v1/files/${file.id}/content?thumb=sq`);
    expect(webpSize(sq.bytes)).toEqual({ width: 160, height: 160 });
    const avif = await call(e, `/v1/files/${file.id}/content?thumb=sm`, {
      headers: { accept: "image/avif,image/webp,*/*;q=0.8" },
    });
    expect(avif.status).toBe(200);
    expect(avif.headers.get("content-type")).toBe("image/avif");
    expect(String.fromCharCode(...avif.bytes.subarray(4, 12))).toBe("ftypavif");
    expect(await imageInfo(avif.bytes)).toMatchObject({ format: "image/avif", width: 160, height: 120 });
    // A client that ranks WebP higher gets WebP.
    const webp = await call(e, `/v1/files/${file.id}/content?thumb=sm`, {
      headers: { accept: "image/avif;q=0.5,image/webp" },
    });
    expect(webp.headers.get("content-type")).toBe("image/webp");
  });

  // The stored rendition keeps its ETag and Cache-Control, and If-None-Match gets a 304.
  it("is made once: a second request is one R2 read and no transform", async () => {
    const { env: e, counts } = countingEnv();
    const file = await upload(e, user.accessToken, await makePng(300, 200), "image/png");
    resetCounts(counts);
    const first = await call(e, `/v1/files/${file.id}/content?thumb=sq`);
    expect(first.status).toBe(200);
    expect(counts.transforms).toBe(1);
    expect(counts.r2Puts).toBe(1);
    resetCounts(counts);
    const second = await call(e, `/v1/files/${file.id}/content?thumb=sq`);
    expect(second.status).toBe(200);
    expect(counts).toMatchObject({ transforms: 0, infos: 0, r2Gets: 1, r2Puts: 0, r2Heads: 0 });
    expect(second.bytes).toEqual(first.bytes);
    expect(second.headers.get("etag")).toBe(first.headers.get("etag"));
    expect(second.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(second.headers.get("content-length")).toBe(String(first.bytes.length));
    resetCounts(counts);
    const notModified = await call(e, `/v1/files/${file.id}/content?thumb=sq`, {
      headers: { "if-none-match": first.headers.get("etag")! },
    });
    expect(notModified.status).toBe(304);
    expect(counts).toMatchObject({ transforms: 0, r2Gets: 0 });
    // The rendition's tag differs from the original's and between formats.
    const original = await call(e, `/v1/files/${file.id}/content`);
    expect(original.headers.get("etag")).not.toBe(first.headers.get("etag"));
  });

  it("concurrent first requests: each gets a whole, valid rendition; the stored one is whole", async () => {
    const { env: e } = countingEnv();
    const file = await upload(e, user.accessToken, await makePng(320, 240), "image/png");
    const results = await Promise.all([1, 2, 3, 4].map(() => call(e, `/v1/files/${file.id}/content?thumb=sm`)));
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(webpSize(r.bytes)).toEqual({ width: 160, height: 120 });
      expect(Number(r.headers.get("content-length"))).toBe(r.bytes.length);
    }
    const stored = await env.MEDIA.get(`r/${file.id}/sm.webp`);
    const bytes = new Uint8Array(await stored!.arrayBuffer());
    expect(webpSize(bytes)).toEqual({ width: 160, height: 120 });
  });

  it("renditions go with the file", async () => {
    const { env: e } = countingEnv();
    const file = await upload(e, user.accessToken, await makePng(200, 200), "image/png");
    await call(e, `/v1/files/${file.id}/content?thumb=sm`);
    await call(e, `/v1/files/${file.id}/content?thumb=md`, { headers: { accept: "image/avif" } });
    expect((await env.MEDIA.list({ prefix: `r/${file.id}/` })).objects.map((o) => o.key).sort()).toEqual([
      `r/${file.id}/md.avif`,
      `r/${file.id}/sm.webp`,
    ]);
    expect((await call(e, `/v1/files/${file.id}`, { method: "DELETE", token: user.accessToken })).status).toBe(204);
    expect((await env.MEDIA.list({ prefix: `r/${file.id}/` })).objects).toEqual([]);
    expect(await env.MEDIA.get(`f/${file.id}`)).toBeNull();
  });

  it("renditions go with the account, and a HEAD of a thumbnail answers its headers", async () => {
    const { env: e } = countingEnv();
    const gone = await signup();
    const file = await upload(e, gone.accessToken, await makePng(100, 100), "image/png");
    const head = await call(e, `/v1/files/${file.id}/content?thumb=sq`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toBe("image/webp");
    expect(head.bytes.length).toBe(0);
    expect((await env.MEDIA.list({ prefix: `r/${file.id}/` })).objects).toHaveLength(1);
    expect((await call(e, "/v1/me", { method: "DELETE", token: gone.accessToken })).status).toBe(204);
    expect((await env.MEDIA.list({ prefix: `r/${file.id}/` })).objects).toEqual([]);
  });

  it("renditions do not count against the storage quota", async () => {
    const png = await makePng(300, 300);
    const quota = countingEnv();
    const e = Object.create(quota.env, { STORAGE_QUOTA_BYTES: { value: String(png.length) } }) as Env;
    const owner = await signup();
    const file = await upload(e, owner.accessToken, png, "image/png");
    // The quota is full, yet every preset is made.
    for (const preset of ["sm", "md", "sq"])
      expect((await call(e, `/v1/files/${file.id}/content?thumb=${preset}`)).status).toBe(200);
    expect(
      (
        await call(e, "/v1/files?name=one", {
          token: owner.accessToken,
          raw: "x",
          headers: { "content-type": "text/plain" },
        })
      ).status,
    ).toBe(413);
    // Deleting the file frees exactly its bytes: the renditions never held any.
    expect((await call(e, `/v1/files/${file.id}`, { method: "DELETE", token: owner.accessToken })).status).toBe(204);
    expect((await upload(e, owner.accessToken, png, "image/png")).size).toBe(png.length);
  });
});

describe("dimensions and placeholder (after-upload job)", () => {
  it("a PNG: width, height and a ThumbHash appear once the job ran", async () => {
    const { env: e, jobs } = countingEnv();
    const file = await upload(e, user.accessToken, await makePng(240, 120), "image/png", "private");
    expect(file).toMatchObject({ width: null, height: null, placeholder: null });
    expect(jobs).toEqual([{ type: "files.image", fileId: file.id }]);
    await runJobs(e, jobs);
    const meta = await call(e, `/v1/files/${file.id}`, { token: user.accessToken });
    expect(meta.json).toMatchObject({ width: 240, height: 120 });
    expect(typeof meta.json.placeholder).toBe("string");
    const hash = Uint8Array.from(atob(meta.json.placeholder), (c) => c.charCodeAt(0));
    expect(hash.length).toBeGreaterThan(5);
    expect(hash.length).toBeLessThan(40);
    expect(thumbHashToApproximateAspectRatio(hash)).toBeCloseTo(2, 0);
    // Listed files carry them too.
    const list = await call(e, "/v1/files", { token: user.accessToken });
    expect(list.json.items.find((f: { id: string }) => f.id === file.id)).toMatchObject({ width: 240, height: 120 });
  });

  // Orientation 6 means rotated 90°: width and height are those of the upright picture.
  it("a JPEG with EXIF orientation 6 gets upright dimensions and thumbnails", async () => {
    const { env: e, jobs } = countingEnv();
    const jpeg = await makeJpeg(300, 200, 6);
    const file = await upload(e, user.accessToken, jpeg, "image/jpeg", "private");
    await runJobs(e, jobs);
    const meta = await call(e, `/v1/files/${file.id}`, { token: user.accessToken });
    expect(meta.json).toMatchObject({ width: 200, height: 300 });
    expect(meta.json.placeholder).toEqual(expect.any(String));
    const sm = await call(e, `/v1/files/${file.id}/content?thumb=sm`, { token: user.accessToken });
    expect(webpSize(sm.bytes)).toEqual({ width: 107, height: 160 });
  });

  it("tus uploads get the same job once the last byte lands", async () => {
    const { env: e, jobs } = countingEnv();
    const png = await makePng(90, 60);
    const created = await tusCreate(e, user.accessToken, png.length, {
      filename: "t.png",
      filetype: "image/png",
      visibility: "private",
    });
    const half = Math.floor(png.length / 2);
    await tusPatch(e, user.accessToken, created.url, 0, png.subarray(0, half));
    expect(jobs).toEqual([]);
    const done = await tusPatch(e, user.accessToken, created.url, half, png.subarray(half));
    const fileId = done.headers.get("outpost-file-id")!;
    expect(jobs).toEqual([{ type: "files.image", fileId }]);
    await runJobs(e, jobs);
    expect((await call(e, `/v1/files/${fileId}`, { token: user.accessToken })).json).toMatchObject({
      width: 90,
      height: 60,
      placeholder: expect.any(String),
    });
  });

  // An image the binding cannot decode gets no dimensions, and its job is still acknowledged.
  it("queues no job for a non-image; an undecodable image gets no dimensions", async () => {
    const { env: e, jobs } = countingEnv();
    await call(e, "/v1/files?name=a.txt", {
      token: user.accessToken,
      raw: "hello",
      headers: { "content-type": "text/plain" },
    });
    expect(jobs).toEqual([]);
    const broken = new Uint8Array(500);
    broken.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const file = await upload(e, user.accessToken, broken, "image/png", "private");
    await runJobs(e, jobs);
    expect((await call(e, `/v1/files/${file.id}`, { token: user.accessToken })).json).toMatchObject({
      width: null,
      height: null,
      placeholder: null,
    });
    const thumb = await call(e, `/v1/files/${file.id}/content?thumb=sm`, { token: user.accessToken });
    expect(thumb.status).toBe(415);
  });
});

describe("location privacy", () => {
  // GPS goes from both EXIF and XMP; the recorded SHA-256 is that of the stored bytes.
  it("stores a public JPEG without GPS, keeping orientation and length", async () => {
    const { env: e } = countingEnv();
    const jpeg = await makeJpeg(120, 80, 6);
    expect(hasGps(jpeg)).toBe(true);
    const file = await upload(e, user.accessToken, jpeg, "image/jpeg", "public");
    const served = await call(e, `/v1/files/${file.id}/content`);
    expect(served.status).toBe(200);
    expect(hasGps(served.bytes)).toBe(false);
    expect(served.bytes.length).toBe(jpeg.length);
    expect(jpegOrientation(served.bytes)).toBe(6);
    expect(await imageInfo(served.bytes)).toMatchObject({ format: "image/jpeg", width: 120, height: 80 });
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", served.bytes));
    expect(file.sha256).toBe([...digest].map((x) => x.toString(16).padStart(2, "0")).join(""));
  });

  it("a public PNG loses its eXIf chunk", async () => {
    const { env: e } = countingEnv();
    const { exifTiff } = await import("./image-fixtures");
    const png = await makePng(50, 40, [{ type: "eXIf", data: exifTiff(1) }]);
    expect(hasGps(png)).toBe(true);
    const file = await upload(e, user.accessToken, png, "image/png", "public");
    const served = await call(e, `/v1/files/${file.id}/content`);
    expect(hasGps(served.bytes)).toBe(false);
    expect(await imageInfo(served.bytes)).toMatchObject({ format: "image/png", width: 50, height: 40 });
  });

  it("a public JPEG through tus, in chunks that cut the EXIF segment, is stored without GPS", async () => {
    const { env: e } = countingEnv();
    const jpeg = await makeJpeg(100, 60, 3);
    const created = await tusCreate(e, user.accessToken, jpeg.length, {
      filename: "t.jpg",
      filetype: "image/jpeg",
      visibility: "public",
    });
    let offset = 0;
    let fileId: string | null = null;
    for (const size of [100, 40, 5000, 100_000]) {
      const res = await tusPatch(e, user.accessToken, created.url, offset, jpeg.subarray(offset, offset + size));
      expect(res.status).toBe(204);
      offset = Number(res.headers.get("upload-offset"));
      fileId = res.headers.get("outpost-file-id");
      if (fileId) break;
    }
    expect(fileId).not.toBeNull();
    const served = await call(e, `/v1/files/${fileId}/content`);
    expect(served.bytes.length).toBe(jpeg.length);
    expect(hasGps(served.bytes)).toBe(false);
    expect(await imageInfo(served.bytes)).toMatchObject({ format: "image/jpeg", width: 100, height: 60 });
    // The 40-byte PATCH held only the EXIF head: released with the orientation rewritten, not stalled.
    expect(jpegOrientation(served.bytes)).toBe(3);
  });

  // The app did not opt into stripping private files; with STRIP_IMAGE_METADATA=all they lose the GPS too.
  it("keeps a private JPEG's bytes unless STRIP_IMAGE_METADATA=all", async () => {
    const { env: e } = countingEnv();
    const jpeg = await makeJpeg(60, 40, 1);
    const kept = await upload(e, user.accessToken, jpeg, "image/jpeg", "private");
    expect((await call(e, `/v1/files/${kept.id}/content`, { token: user.accessToken })).bytes).toEqual(jpeg);
    const all = Object.create(e, { STRIP_IMAGE_METADATA: { value: "all" } }) as Env;
    const stripped = await upload(all, user.accessToken, jpeg, "image/jpeg", "private");
    expect(hasGps((await call(all, `/v1/files/${stripped.id}/content`, { token: user.accessToken })).bytes)).toBe(
      false,
    );
  });

  // The scrubber cannot reach the metadata in these formats, so public copies are refused.
  it("refuses public HEIC, AVIF and TIFF with 415; stores private ones", async () => {
    const { env: e } = countingEnv();
    const avif = new Uint8Array(64);
    avif.set([0, 0, 0, 0x1c, 0x66, 0x74, 0x79, 0x70, 0x61, 0x76, 0x69, 0x66]);
    const pub = await call(e, "/v1/files?visibility=public", {
      token: user.accessToken,
      raw: avif,
      headers: { "content-type": "image/avif" },
    });
    expect(pub.status).toBe(415);
    const priv = await call(e, "/v1/files?visibility=private", {
      token: user.accessToken,
      raw: avif,
      headers: { "content-type": "image/avif" },
    });
    expect(priv.status).toBe(201);
    const tus = await tusCreate(e, user.accessToken, 64, {
      filename: "x.heic",
      filetype: "image/heic",
      visibility: "public",
    });
    expect(tus.status).toBe(415);
  });
});

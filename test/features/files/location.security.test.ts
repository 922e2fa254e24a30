/**
 * Location in public media (issue 23, item 1): the scrubber is chosen by the bytes' real type,
 * whatever was declared (a JPEG sent as application/octet-stream, a form part without a type, a
 * tus upload in tiny chunks), and MP4/MOV lose `©xyz`, `loci` and the QuickTime location keys,
 * with `moov` before or after `mdat`. Real files made by exiftool, heif-enc and ffmpeg.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { indexOfBytes, media } from "../../fixtures";
import { api, signup, type TestUser } from "../../helpers/api";
import { bytesOf } from "./helpers";
import { call, countingEnv, tusCreate, tusPatch } from "./image-helpers";

const ascii = (s: string) => Uint8Array.from(s, (ch) => ch.charCodeAt(0));
/** EXIF GPSLatitude of the photos (48/1 51/1, big-endian rationals) and the XMP spelling. */
const EXIF_LAT = new Uint8Array([0, 0, 0, 48, 0, 0, 0, 1, 0, 0, 0, 51, 0, 0, 0, 1]);
const XMP_LAT = ascii("GPSLatitude");
const ISO6709 = ascii("+48.8584");

const hasPhotoGps = (b: Uint8Array) => indexOfBytes(b, EXIF_LAT) >= 0 || indexOfBytes(b, XMP_LAT) >= 0;

/** Box types of an MP4/MOV as `parent/child` paths, walking the containers that hold metadata. */
function boxPaths(b: Uint8Array): string[] {
  const out: string[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const walk = (start: number, end: number, path: string) => {
    let at = start;
    while (at + 8 <= end) {
      let size = dv.getUint32(at);
      const type = String.fromCharCode(...b.subarray(at + 4, at + 8));
      if (size === 1) size = Number(dv.getBigUint64(at + 8));
      if (size === 0) size = end - at;
      if (size < 8 || at + size > end) throw new Error(`broken box ${type} at ${at}`);
      const p = `${path}/${type}`;
      out.push(p);
      if (["moov", "trak", "udta", "ilst"].includes(type)) walk(at + 8, at + size, p);
      if (type === "meta") walk(at + (dv.getUint32(at + 8) === 0 ? 12 : 8), at + size, p);
      at += size;
    }
  };
  walk(0, b.length, "");
  return out;
}

/** The bytes of the `mdat` payload (the media itself). */
function mdatOf(b: Uint8Array): Uint8Array {
  const at = indexOfBytes(b, ascii("mdat")) - 4;
  const size = new DataView(b.buffer, b.byteOffset).getUint32(at);
  return b.subarray(at + 8, at + size);
}

/** The payload of the first `type` box (found by its type bytes). */
function payloadOf(b: Uint8Array, type: string): Uint8Array {
  const at = indexOfBytes(b, ascii(type)) - 4;
  return b.subarray(at + 8, at + new DataView(b.buffer, b.byteOffset).getUint32(at));
}

let u: TestUser;
const e = countingEnv().env;
beforeAll(async () => {
  u = await signup();
});

async function post(bytes: Uint8Array, type: string, visibility: "public" | "private" = "public") {
  return call(e, `/v1/files?name=f&visibility=${visibility}`, {
    token: u.accessToken,
    raw: bytes,
    headers: type ? { "content-type": type } : {},
  });
}
const served = async (id: string) => (await bytesOf(`/v1/files/${id}/content`, { token: u.accessToken })).bytes;

describe("location privacy by the real type", () => {
  it("fixtures carry their location before upload", () => {
    for (const b of [media.jpeg, media.png, media.webp]) expect(hasPhotoGps(b)).toBe(true);
    expect(indexOfBytes(media.movKeys, ISO6709)).toBeGreaterThan(0);
    expect(indexOfBytes(media.movXyz, ISO6709)).toBeGreaterThan(0);
    expect(boxPaths(media.mp4Loci)).toContain("/moov/udta/loci");
  });

  it("a public JPEG, PNG or WebP declared as application/octet-stream (or text/plain) loses its GPS", async () => {
    for (const [bytes, type] of [
      [media.jpeg, "application/octet-stream"],
      [media.png, "application/octet-stream"],
      [media.webp, "application/octet-stream"],
      [media.jpeg, "text/plain"],
    ] as const) {
      const res = await post(bytes, type);
      expect(res.status, type).toBe(201);
      expect(res.json.contentType).toBe(type);
      const out = await served(res.json.id);
      expect(out.length).toBe(bytes.length);
      expect(hasPhotoGps(out)).toBe(false);
    }
  });

  it("a private one declared as application/octet-stream is stored as sent", async () => {
    const res = await post(media.jpeg, "application/octet-stream", "private");
    expect(await served(res.json.id)).toEqual(media.jpeg);
  });

  it("a multipart part without a Content-Type is scrubbed by its bytes", async () => {
    const boundary = "b0undary";
    const body = new Uint8Array([
      ...ascii(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="IMG_0001.JPG"\r\n\r\n`),
      ...media.jpeg,
      ...ascii(`\r\n--${boundary}--\r\n`),
    ]);
    const res = await call(e, "/v1/files?visibility=public", {
      token: u.accessToken,
      raw: body,
      headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
    });
    expect(res.status).toBe(201);
    expect(res.json.contentType).toBe("application/octet-stream");
    expect(hasPhotoGps(await served(res.json.id))).toBe(false);
  });

  it("public HEIC and AVIF are refused (415) whatever they are declared as; private ones are stored", async () => {
    for (const bytes of [media.heic, media.avif])
      for (const type of ["application/octet-stream", "video/mp4", ""]) {
        const res = await post(bytes, type);
        expect(res.status, type).toBe(415);
        expect(res.json.code).toBe("unsupported_media_type");
      }
    expect((await post(media.heic, "application/octet-stream", "private")).status).toBe(201);
  });

  it("so are a JPEG XL container and a Canon CR3 (both hold EXIF), and BigTIFF raw photos", async () => {
    const jxl = new Uint8Array([0, 0, 0, 12, ...ascii("JXL "), 0x0d, 0x0a, 0x87, 0x0a, 0, 0, 0, 20, ...ascii("Exif")]);
    const cr3 = new Uint8Array([0, 0, 0, 24, ...ascii("ftypcrx "), 0, 0, 0, 1, ...ascii("crx isom"), ...EXIF_LAT]);
    const bigTiff = new Uint8Array([0x49, 0x49, 0x2b, 0, 8, 0, 0, 0, ...EXIF_LAT]);
    for (const bytes of [jxl, cr3, bigTiff]) expect((await post(bytes, "application/octet-stream")).status).toBe(415);
  });

  it("a public GIF is stored as sent (GIF has no EXIF)", async () => {
    const res = await post(media.gif, "application/octet-stream");
    expect(await served(res.json.id)).toEqual(media.gif);
  });
});

describe("location privacy in MP4 and MOV", () => {
  const videos = [
    ["mp4Loci", "video/mp4"],
    ["movKeys", "video/quicktime"],
    ["movXyz", "video/quicktime"],
  ] as const;

  // Size, box structure and media data stay as they were.
  it("public videos lose ©xyz, loci and the QuickTime location keys", async () => {
    for (const [name, declared] of videos) {
      for (const type of [declared, "application/octet-stream"]) {
        const bytes = media[name];
        const res = await post(bytes, type);
        expect(res.status, `${name} ${type}`).toBe(201);
        const out = await served(res.json.id);
        expect(out.length).toBe(bytes.length);
        expect(indexOfBytes(out, ISO6709), name).toBe(-1);
        const paths = boxPaths(out);
        expect(
          paths.filter((p) => /\/(loci|\u00a9xyz|XMP_)$/.test(p)),
          name,
        ).toEqual([]);
        expect(paths).toContain("/moov/trak");
        expect(mdatOf(out)).toEqual(mdatOf(bytes));
        if (indexOfBytes(bytes, ascii("loci")) >= 0) expect(indexOfBytes(out, payloadOf(bytes, "loci"))).toBe(-1);
      }
    }
  });

  it("the QuickTime keys stay, their location items become free boxes; other items stay", async () => {
    const res = await post(media.movKeys, "video/quicktime");
    const out = await served(res.json.id);
    const paths = boxPaths(out);
    expect(paths).toContain("/moov/udta/meta/keys");
    // Items 1 (com.apple.quicktime.location.ISO6709) and 2 (location) go; 3 (encoder) stays.
    expect(paths.filter((p) => p.startsWith("/moov/udta/meta/ilst/"))).toEqual([
      "/moov/udta/meta/ilst/free",
      "/moov/udta/meta/ilst/free",
      "/moov/udta/meta/ilst/\0\0\0\u0003",
    ]);
    expect(new TextDecoder().decode(out)).toContain("Lavf");
  });

  it("a private video is stored as sent", async () => {
    const res = await post(media.movXyz, "video/quicktime", "private");
    expect(await served(res.json.id)).toEqual(media.movXyz);
  });
});

describe("location privacy over tus", () => {
  const tusUpload = async (bytes: Uint8Array, filetype: string, cuts: number[]) => {
    const up = await tusCreate(e, u.accessToken, bytes.length, { filetype, visibility: "public", filename: "v" });
    expect(up.status).toBe(201);
    let offset = 0;
    let fileId: string | null = null;
    for (let guard = 0; offset < bytes.length && guard < 50; guard++) {
      const next = cuts.find((c) => c > offset) ?? bytes.length;
      const res = await tusPatch(e, u.accessToken, up.url, offset, bytes.subarray(offset, next));
      expect(res.status).toBe(204);
      offset = Number(res.headers.get("upload-offset"));
      fileId = res.headers.get("outpost-file-id");
    }
    expect(fileId).not.toBeNull();
    return served(fileId!);
  };

  it("a JPEG declared as application/octet-stream, sent in tiny first chunks, loses its GPS", async () => {
    const out = await tusUpload(media.jpeg, "application/octet-stream", [10, 30, 63, 200, 1000]);
    expect(out.length).toBe(media.jpeg.length);
    expect(hasPhotoGps(out)).toBe(false);
  });

  it("a MOV with moov last, in chunks, loses its location", async () => {
    const out = await tusUpload(media.movKeys, "application/octet-stream", [100, 1000, 1500, 1900]);
    expect(out.length).toBe(media.movKeys.length);
    expect(indexOfBytes(out, ISO6709)).toBe(-1);
    expect(mdatOf(out)).toEqual(mdatOf(media.movKeys));
  });

  it("a HEIC declared as application/octet-stream is refused (415) once its first bytes arrive", async () => {
    const up = await tusCreate(e, u.accessToken, media.heic.length, {
      filetype: "application/octet-stream",
      visibility: "public",
    });
    const res = await tusPatch(e, u.accessToken, up.url, 0, media.heic);
    expect(res.status).toBe(415);
    expect((await api(up.url, { token: u.accessToken, headers: { "tus-resumable": "1.0.0" } })).status).toBe(404);
  });
});

/**
 * The in-place metadata scrubber: same length, GPS gone, the picture intact, and the same result
 * however the bytes are cut into chunks or paused and resumed from a snapshot (tus).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { initialScrubState, Scrubber, type ScrubKind, scrubStream } from "../../../src/features/files/scrub";
import { concatBytes } from "../../helpers/bytes";
import { exifTiff, hasGps, imageInfo, jpegOrientation, makeJpeg, makePng } from "./image-fixtures";

const ascii = (s: string) => Uint8Array.from(s, (ch) => ch.charCodeAt(0));

/** Scrubs `b` in the chunks `cuts` describes (ascending offsets). */
function scrubChunks(kind: ScrubKind, b: Uint8Array, cuts: number[]): Uint8Array {
  const sc = new Scrubber(initialScrubState(kind));
  const out: Uint8Array[] = [];
  let at = 0;
  for (const c of [...cuts, b.length]) {
    out.push(...sc.push(b.subarray(at, c)));
    at = c;
  }
  out.push(...sc.end());
  return concatBytes(...out);
}

/**
 * Scrubs `b` like tus: each "request" gets the bytes from the last acknowledged offset up to the
 * next cut, ends with `pause()`, and the next request resumes from the snapshot.
 */
function scrubResumed(kind: ScrubKind, b: Uint8Array, cuts: number[]): Uint8Array {
  const stored: Uint8Array[] = [];
  let state = initialScrubState(kind);
  for (const c of [...cuts, b.length]) {
    if (c <= state.pos) continue;
    const sc = new Scrubber(state);
    stored.push(...sc.push(b.subarray(state.pos, c)));
    stored.push(...(c === b.length ? sc.end() : sc.pause()));
    state = sc.snapshot();
  }
  // A client resends what was not acknowledged until the whole file is in.
  while (state.pos < b.length) {
    const sc = new Scrubber(state);
    stored.push(...sc.push(b.subarray(state.pos)), ...sc.end());
    state = sc.snapshot();
  }
  return concatBytes(...stored);
}

function webpWithExif(): Uint8Array {
  const chunk = (fourcc: string, data: Uint8Array) => {
    const h = new Uint8Array(8);
    h.set(ascii(fourcc));
    new DataView(h.buffer).setUint32(4, data.length, true);
    return concatBytes(h, data, data.length & 1 ? new Uint8Array(1) : new Uint8Array());
  };
  const vp8x = new Uint8Array(10);
  vp8x[0] = 0x08 | 0x04;
  const body = concatBytes(
    ascii("WEBP"),
    chunk("VP8X", vp8x),
    chunk("VP8L", new Uint8Array(21)),
    chunk("EXIF", exifTiff(1)),
    chunk("XMP ", ascii("<x>exif:GPSLatitude>52,31.2057N<</x>")),
  );
  const riff = new Uint8Array(8);
  riff.set(ascii("RIFF"));
  new DataView(riff.buffer).setUint32(4, body.length, true);
  return concatBytes(riff, body);
}

describe("metadata scrubber", () => {
  it("JPEG: EXIF GPS and XMP gone, orientation and the picture kept, same length", async () => {
    const jpeg = await makeJpeg(64, 48, 8);
    const out = scrubChunks("jpeg", jpeg, []);
    expect(out.length).toBe(jpeg.length);
    expect(hasGps(out)).toBe(false);
    expect(jpegOrientation(out)).toBe(8);
    expect(await imageInfo(out)).toMatchObject({ format: "image/jpeg", width: 64, height: 48 });
  });

  // The trailer is whatever follows the last image.
  it("JPEG: an embedded MPF image is scrubbed too; a trailer is zeroed", async () => {
    const a = await makeJpeg(16, 16, 1);
    const b = await makeJpeg(8, 8, 1);
    const trailer = ascii("SEFT exif:GPSLatitude>52,31.2057N< trailer");
    const out = scrubChunks("jpeg", concatBytes(a, b, trailer), []);
    expect(hasGps(out)).toBe(false);
    expect(out.subarray(a.length + b.length)).toEqual(new Uint8Array(trailer.length));
  });

  it("PNG: eXIf and text chunks become zeroed private chunks with valid CRCs; the picture decodes", async () => {
    const png = await makePng(20, 10, [
      { type: "eXIf", data: exifTiff(1) },
      { type: "tEXt", data: ascii("Comment\0exif:GPSLatitude>52,31.2057N<") },
    ]);
    const out = scrubChunks("png", png, []);
    expect(out.length).toBe(png.length);
    expect(hasGps(out)).toBe(false);
    expect(new TextDecoder().decode(out)).not.toContain("eXIf");
    expect(await imageInfo(out)).toMatchObject({ format: "image/png", width: 20, height: 10 });
  });

  it("WebP: EXIF and XMP chunks become JUNK, the VP8X flags drop them", () => {
    const webp = webpWithExif();
    const out = scrubChunks("webp", webp, []);
    expect(out.length).toBe(webp.length);
    expect(hasGps(out)).toBe(false);
    expect(out[20]! & 0x0c).toBe(0);
    expect(new TextDecoder().decode(out)).toContain("JUNK");
  });

  it("any chunking gives the same bytes as one pass (JPEG, PNG, WebP)", async () => {
    const samples: [ScrubKind, Uint8Array][] = [
      ["jpeg", await makeJpeg(40, 30, 6)],
      ["png", await makePng(30, 20, [{ type: "eXIf", data: exifTiff(6) }])],
      ["webp", webpWithExif()],
    ];
    for (const [kind, bytes] of samples) {
      const whole = scrubChunks(kind, bytes, []);
      fc.assert(
        fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 40 }), (cuts) => {
          expect(
            scrubChunks(
              kind,
              bytes,
              cuts.sort((x, y) => x - y),
            ),
          ).toEqual(whole);
        }),
        { numRuns: 60 },
      );
    }
  });

  // Paused and resumed from snapshots as across tus requests; the result still decodes.
  it("resumed from snapshots, the stored JPEG has no GPS and keeps its length", async () => {
    const jpeg = await makeJpeg(40, 30, 6);
    const whole = scrubChunks("jpeg", jpeg, []);
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 1, max: jpeg.length - 1 }), { maxLength: 12 }),
        async (cuts) => {
          const out = scrubResumed(
            "jpeg",
            jpeg,
            cuts.sort((x, y) => x - y),
          );
          expect(out.length).toBe(jpeg.length);
          expect(hasGps(out)).toBe(false);
          // Only the EXIF head can differ (a request that ended inside it may have lost the
          // orientation); the rest is identical.
          expect(out.subarray(200)).toEqual(whole.subarray(200));
        },
      ),
      { numRuns: 60 },
    );
    expect(await imageInfo(scrubResumed("jpeg", jpeg, [3, 50, 51, 400]))).toMatchObject({ width: 40, height: 30 });
  });

  it("a broken structure is zeroed from there on (fail closed), never thrown", () => {
    const junk = concatBytes(new Uint8Array([0xff, 0xd8, 0x12, 0x34]), ascii("exif:GPSLatitude>52,31.2057N<"));
    const out = scrubChunks("jpeg", junk, [3]);
    expect(out.length).toBe(junk.length);
    expect(hasGps(out)).toBe(false);
  });

  it("scrubStream is a same-length TransformStream", async () => {
    const jpeg = await makeJpeg(32, 32, 1);
    const out = new Uint8Array(
      await new Response(new Blob([jpeg]).stream().pipeThrough(scrubStream("jpeg"))).arrayBuffer(),
    );
    expect(out).toEqual(scrubChunks("jpeg", jpeg, []));
  });
});

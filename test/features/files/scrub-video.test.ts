/**
 * The MP4/MOV location scrubber on its own: the same bytes however the input is cut or paused and
 * resumed (tus), an iPhone-style `moov/meta` with `keys`, 64-bit box sizes, and broken input.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BoxScrubber, type BoxScrubState, initialBoxScrubState } from "../../../src/features/files/scrub-video";
import { indexOfBytes, media } from "../../fixtures";
import { concatBytes } from "../../helpers/bytes";

const ascii = (s: string) => Uint8Array.from(s, (ch) => ch.charCodeAt(0));
const u32 = (n: number) => new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
const box = (type: string, ...body: Uint8Array[]) => {
  const payload = concatBytes(...body);
  return concatBytes(u32(8 + payload.length), ascii(type), payload);
};

function scrub(b: Uint8Array, cuts: number[] = []): Uint8Array {
  const sc = new BoxScrubber(initialBoxScrubState());
  const out: Uint8Array[] = [];
  let at = 0;
  for (const c of [...cuts, b.length]) {
    out.push(...sc.push(b.subarray(at, c)));
    at = c;
  }
  return concatBytes(...out, ...sc.end());
}

/** Like tus: each request resumes from the last snapshot and resends what was not released. */
function scrubResumed(b: Uint8Array, cuts: number[]): Uint8Array {
  const stored: Uint8Array[] = [];
  let state: BoxScrubState = initialBoxScrubState();
  for (const c of [...cuts, b.length]) {
    if (c <= state.pos) continue;
    const sc = new BoxScrubber(state);
    stored.push(...sc.push(b.subarray(state.pos, c)), ...(c === b.length ? sc.end() : sc.pause()));
    state = sc.snapshot();
  }
  while (state.pos < b.length) {
    const sc = new BoxScrubber(state);
    stored.push(...sc.push(b.subarray(state.pos)), ...sc.end());
    state = sc.snapshot();
  }
  return concatBytes(...stored);
}

const ISO6709 = ascii("+48.8584+002.2945");

/** An iPhone-style MOV head: ftyp, moov { mvhd, meta (QuickTime style) { hdlr, keys, ilst } }, mdat. */
function iphoneMov(): Uint8Array {
  const key = (name: string) => concatBytes(u32(8 + name.length), ascii("mdta"), ascii(name));
  const keys = box(
    "keys",
    u32(0),
    u32(3),
    key("com.apple.quicktime.make"),
    key("com.apple.quicktime.location.ISO6709"),
    key("com.apple.quicktime.software"),
  );
  const item = (index: number, value: string) =>
    concatBytes(u32(8 + 16 + value.length), u32(index), box("data", u32(1), u32(0), ascii(value)));
  const ilst = box("ilst", item(1, "Apple"), item(2, "+48.8584+002.2945+035.000/"), item(3, "17.1"));
  const meta = box("meta", box("hdlr", new Uint8Array(24)), keys, ilst);
  return concatBytes(
    box("ftyp", ascii("qt  "), u32(0), ascii("qt  ")),
    box("moov", box("mvhd", new Uint8Array(100)), meta),
    box("mdat", new Uint8Array(64).fill(7)),
  );
}

describe("MP4/MOV location scrubber", () => {
  // The make and software items stay.
  it("iPhone-style moov/meta: the location item becomes a zeroed free box", () => {
    const mov = iphoneMov();
    const out = scrub(mov);
    expect(out.length).toBe(mov.length);
    expect(indexOfBytes(out, ISO6709)).toBe(-1);
    expect(indexOfBytes(out, ascii("Apple"))).toBeGreaterThan(0);
    expect(indexOfBytes(out, ascii("17.1"))).toBeGreaterThan(0);
    expect(indexOfBytes(out, ascii("com.apple.quicktime.location.ISO6709"))).toBeGreaterThan(0);
    expect(out.subarray(out.length - 64)).toEqual(new Uint8Array(64).fill(7));
  });

  it("any chunking gives the same bytes as one pass", () => {
    for (const bytes of [media.mp4Loci, media.movKeys, media.movXyz, iphoneMov()]) {
      const whole = scrub(bytes);
      expect(indexOfBytes(whole, ISO6709)).toBe(-1);
      fc.assert(
        fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 40 }), (cuts) => {
          expect(
            scrub(
              bytes,
              cuts.sort((x, y) => x - y),
            ),
          ).toEqual(whole);
        }),
        { numRuns: 40 },
      );
    }
  });

  // Paused and resumed from snapshots as across tus requests.
  it("resumed from snapshots, the stored video is the same and location-free", () => {
    for (const bytes of [media.movKeys, iphoneMov()]) {
      const whole = scrub(bytes);
      fc.assert(
        fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 12 }), (cuts) => {
          const out = scrubResumed(
            bytes,
            cuts.sort((x, y) => x - y),
          );
          expect(out.length).toBe(bytes.length);
          expect(indexOfBytes(out, ISO6709)).toBe(-1);
          // A request that ended inside `keys` may drop every item of that meta; elsewhere the bytes agree.
          if (indexOfBytes(out, ascii("Apple")) >= 0) expect(out).toEqual(whole);
        }),
        { numRuns: 60 },
      );
    }
  });

  // A final box of size 0 passes too; a box overrunning its parent is zeroed from there on.
  it("passes 64-bit and size-0 boxes; zeroes from an overrunning box on", () => {
    const big = concatBytes(u32(1), ascii("mdat"), u32(0), u32(16 + 8), new Uint8Array(8).fill(9));
    const tail = concatBytes(u32(0), ascii("mdat"), new Uint8Array(10).fill(5));
    const ok = concatBytes(
      box("ftyp", ascii("isom"), u32(0)),
      big,
      box("moov", box("udta", box("loci", ISO6709))),
      tail,
    );
    const out = scrub(ok, [3, 17, 30]);
    expect(out.length).toBe(ok.length);
    expect(indexOfBytes(out, ISO6709)).toBe(-1);
    expect(indexOfBytes(out, new Uint8Array(8).fill(9))).toBeGreaterThan(0);
    expect(out.subarray(out.length - 10)).toEqual(new Uint8Array(10).fill(5));
    const broken = concatBytes(box("ftyp", ascii("isom"), u32(0)), u32(9999), ascii("moov"), ISO6709);
    const zeroed = scrub(broken);
    expect(zeroed.length).toBe(broken.length);
    expect(indexOfBytes(zeroed, ISO6709)).toBe(-1);
  });
});

/**
 * Real images made in the test: a PNG encoded here (deflate + CRC), a JPEG encoded by the Images
 * binding from it, then given an EXIF segment with an orientation and a GPS position (and an XMP
 * packet naming the position). No binary fixtures.
 */
import { env } from "cloudflare:workers";
import { concatBytes } from "../../helpers/bytes";

export function crc32(b: Uint8Array): number {
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

const ascii = (s: string) => Uint8Array.from(s, (ch) => ch.charCodeAt(0));

function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  out.set(ascii(type), 4);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * A real `w`×`h` RGB PNG (a gradient: red grows left to right, green top to bottom), with optional
 * extra chunks before IDAT.
 */
export async function makePng(
  w: number,
  h: number,
  extra: { type: string; data: Uint8Array }[] = [],
): Promise<Uint8Array> {
  const row = 1 + w * 3;
  const raw = new Uint8Array(h * row);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++)
      raw.set([Math.floor((x * 255) / w), Math.floor((y * 255) / h), 90], y * row + 1 + x * 3);
  }
  const z = new Uint8Array(
    await new Response(new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate"))).arrayBuffer(),
  );
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, w);
  dv.setUint32(4, h);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return concatBytes(
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    ...extra.map((c) => pngChunk(c.type, c.data)),
    pngChunk("IDAT", z),
    pngChunk("IEND", new Uint8Array()),
  );
}

/** The GPS latitude rationals written into test EXIF: 52° 31' 12.34" — a byte pattern to look for. */
const GPS_LATITUDE = new Uint8Array([0, 0, 0, 52, 0, 0, 0, 1, 0, 0, 0, 31, 0, 0, 0, 1, 0, 0, 0x04, 0xd2, 0, 0, 0, 100]);
/** The position as an XMP packet spells it. */
const XMP_GPS = "exif:GPSLatitude>52,31.2057N<";

/**
 * A TIFF (EXIF) structure, big-endian: IFD0 with Orientation and a GPS IFD pointer, the GPS IFD
 * with latitude/longitude and their references.
 */
export function exifTiff(orientation: number): Uint8Array {
  const t = new Uint8Array(140);
  const dv = new DataView(t.buffer);
  t.set(ascii("MM"), 0);
  dv.setUint16(2, 42);
  dv.setUint32(4, 8);
  // IFD0 at 8: 2 entries.
  dv.setUint16(8, 2);
  const entry = (at: number, tag: number, type: number, count: number, value: number, short = false) => {
    dv.setUint16(at, tag);
    dv.setUint16(at + 2, type);
    dv.setUint32(at + 4, count);
    if (short) dv.setUint16(at + 8, value);
    else dv.setUint32(at + 8, value);
  };
  entry(10, 0x0112, 3, 1, orientation, true);
  entry(22, 0x8825, 4, 1, 38);
  dv.setUint32(34, 0);
  // GPS IFD at 38: 4 entries; data at 92 (latitude) and 116 (longitude).
  dv.setUint16(38, 4);
  entry(40, 0x0001, 2, 2, 0);
  t.set(ascii("N\0"), 48);
  entry(52, 0x0002, 5, 3, 92);
  entry(64, 0x0003, 2, 2, 0);
  t.set(ascii("E\0"), 72);
  entry(76, 0x0004, 5, 3, 116);
  dv.setUint32(88, 0);
  t.set(GPS_LATITUDE, 92);
  t.set([0, 0, 0, 13, 0, 0, 0, 1, 0, 0, 0, 24, 0, 0, 0, 1, 0, 0, 0x16, 0x2e, 0, 0, 0, 100], 116);
  return t;
}

function jpegSegment(marker: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  out[0] = 0xff;
  out[1] = marker;
  new DataView(out.buffer).setUint16(2, payload.length + 2);
  out.set(payload, 4);
  return out;
}

const bytesOfStream = async (s: ReadableStream<Uint8Array>) => new Uint8Array(await new Response(s).arrayBuffer());
const streamOf = (b: Uint8Array) => new Blob([b]).stream();

/**
 * A real `w`×`h` JPEG (pixels as stored, before orientation) with an EXIF APP1 segment (the given
 * orientation and a GPS position) and an XMP APP1 segment naming the position.
 */
export async function makeJpeg(w: number, h: number, orientation = 1): Promise<Uint8Array> {
  const png = await makePng(w, h);
  const out = await env.IMAGES.input(streamOf(png)).output({ format: "image/jpeg" });
  const jpeg = await bytesOfStream(out.image());
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8)
    throw new Error("the Images binding did not make a JPEG (is sharp installed?)");
  const exif = jpegSegment(0xe1, concatBytes(ascii("Exif\0\0"), exifTiff(orientation)));
  const xmp = jpegSegment(
    0xe1,
    ascii(`http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><rdf:Description ${XMP_GPS}/></x:xmpmeta>`),
  );
  return concatBytes(jpeg.subarray(0, 2), exif, xmp, jpeg.subarray(2));
}

/** Index of `needle` in `hay`, or -1. */
function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** True when `bytes` contain the test GPS position, as EXIF rationals or as XMP text. */
export const hasGps = (bytes: Uint8Array) =>
  indexOfBytes(bytes, GPS_LATITUDE) >= 0 || indexOfBytes(bytes, ascii(XMP_GPS)) >= 0;

/** Width and height from a WebP header (VP8, VP8L or VP8X); throws when it is not WebP. */
export function webpSize(b: Uint8Array): { width: number; height: number } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const tag = (at: number) => String.fromCharCode(...b.subarray(at, at + 4));
  if (tag(0) !== "RIFF" || tag(8) !== "WEBP") throw new Error(`not WebP: ${tag(0)} ${tag(8)}`);
  const chunk = tag(12);
  if (chunk === "VP8 ") return { width: dv.getUint16(26, true) & 0x3fff, height: dv.getUint16(28, true) & 0x3fff };
  if (chunk === "VP8L") {
    const bits = dv.getUint32(21, true);
    return { width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
  }
  if (chunk === "VP8X") {
    const u24 = (at: number) => b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16);
    return { width: u24(24) + 1, height: u24(27) + 1 };
  }
  throw new Error(`unknown WebP chunk ${chunk}`);
}

/** The image's format and size as the Images binding reads them. */
export async function imageInfo(bytes: Uint8Array) {
  return env.IMAGES.info(streamOf(bytes)) as Promise<{ format: string; width: number; height: number }>;
}

/** The EXIF Orientation in a JPEG's APP1 segment, or null. */
export function jpegOrientation(b: Uint8Array): number | null {
  let at = 2;
  while (at + 4 <= b.length && b[at] === 0xff) {
    const marker = b[at + 1]!;
    const len = (b[at + 2]! << 8) | b[at + 3]!;
    if (marker === 0xda) return null;
    const p = b.subarray(at + 4, at + 2 + len);
    if (marker === 0xe1 && String.fromCharCode(...p.subarray(0, 4)) === "Exif") {
      const t = p.subarray(6);
      const dv = new DataView(t.buffer, t.byteOffset, t.byteLength);
      const le = t[0] === 0x49;
      const ifd = dv.getUint32(4, le);
      for (let i = 0; i < dv.getUint16(ifd, le); i++)
        if (dv.getUint16(ifd + 2 + i * 12, le) === 0x0112) return dv.getUint16(ifd + 2 + i * 12 + 8, le);
    }
    at += 2 + len;
  }
  return null;
}

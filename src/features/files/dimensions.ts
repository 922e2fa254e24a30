/**
 * An image's pixel size read from its header bytes, without decoding: JPEG (SOF), PNG (IHDR),
 * GIF (logical screen), WebP (VP8, VP8L, VP8X), HEIC/HEIF/AVIF (the largest `ispe` property).
 * Used to refuse image bombs before any transform (`limits.imageMaxPixels`).
 */

export interface PixelSize {
  width: number;
  height: number;
}

const ascii = (b: Uint8Array, at: number, s: string) =>
  b.length >= at + s.length && [...s].every((ch, i) => b[at + i] === ch.charCodeAt(0));

function jpegSize(b: Uint8Array, dv: DataView): PixelSize | null {
  let at = 2;
  while (at + 4 <= b.length) {
    if (b[at] !== 0xff) return null;
    const marker = b[at + 1]!;
    if (marker === 0xff) {
      at++;
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2;
      continue;
    }
    // SOF0-SOF15, except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (at + 9 > b.length) return null;
      return { height: dv.getUint16(at + 5), width: dv.getUint16(at + 7) };
    }
    if (marker === 0xd9 || marker === 0xda) return null;
    at += 2 + dv.getUint16(at + 2);
  }
  return null;
}

function webpSize(b: Uint8Array, dv: DataView): PixelSize | null {
  if (b.length < 30) return null;
  if (ascii(b, 12, "VP8 ")) return { width: dv.getUint16(26, true) & 0x3fff, height: dv.getUint16(28, true) & 0x3fff };
  if (ascii(b, 12, "VP8L")) {
    const bits = dv.getUint32(21, true);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (ascii(b, 12, "VP8X")) {
    const u24 = (at: number) => b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16);
    return { width: u24(24) + 1, height: u24(27) + 1 };
  }
  return null;
}

/** HEIF/AVIF: the largest `ispe` (image spatial extents) in meta/iprp/ipco. */
function heifSize(b: Uint8Array, dv: DataView): PixelSize | null {
  let best: PixelSize | null = null;
  const walk = (start: number, end: number, depth: number) => {
    let at = start;
    while (at + 8 <= end && depth < 4) {
      const size = dv.getUint32(at);
      if (size < 8 || at + size > end) return;
      if (ascii(b, at + 4, "meta")) walk(at + 12, at + size, depth + 1);
      else if (ascii(b, at + 4, "iprp") || ascii(b, at + 4, "ipco")) walk(at + 8, at + size, depth + 1);
      else if (ascii(b, at + 4, "ispe") && size >= 20) {
        const s = { width: dv.getUint32(at + 12), height: dv.getUint32(at + 16) };
        if (!best || s.width * s.height > best.width * best.height) best = s;
      }
      at += size;
    }
  };
  walk(0, b.length, 0);
  return best;
}

/** The pixel size in an image's first bytes, or null when the header is not there (or not an image). */
export function headerSize(head: Uint8Array): PixelSize | null {
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (head[0] === 0xff && head[1] === 0xd8) return jpegSize(head, dv);
  if (ascii(head, 1, "PNG") && ascii(head, 12, "IHDR") && head.length >= 24)
    return { width: dv.getUint32(16), height: dv.getUint32(20) };
  if (ascii(head, 0, "GIF8") && head.length >= 10)
    return { width: dv.getUint16(6, true), height: dv.getUint16(8, true) };
  if (ascii(head, 0, "RIFF") && ascii(head, 8, "WEBP")) return webpSize(head, dv);
  if (ascii(head, 4, "ftyp")) return heifSize(head, dv);
  return null;
}

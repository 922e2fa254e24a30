/**
 * A small PNG decoder for the placeholder: the Images binding gives a ≤100 px PNG rendition
 * (raw RGBA output is not available in local development), and ThumbHash wants RGBA pixels.
 * 8- and 16-bit grey, RGB, palette, grey+alpha and RGBA; not interlaced (the binding does not
 * interlace). Returns null for anything else.
 */

export interface Rgba {
  width: number;
  height: number;
  /** width × height × 4 bytes. */
  rgba: Uint8Array;
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

async function inflate(data: Uint8Array): Promise<Uint8Array> {
  const out = new Blob([data]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(out).arrayBuffer());
}

export async function decodePng(png: Uint8Array, maxPixels = 256 * 256): Promise<Rgba | null> {
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  if (png.length < 33 || dv.getUint32(0) !== 0x89504e47 || dv.getUint32(4) !== 0x0d0a1a0a) return null;
  let width = 0;
  let height = 0;
  let depth = 0;
  let color = -1;
  let interlace = 0;
  let palette: Uint8Array | null = null;
  let trns: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  for (let at = 8; at + 8 <= png.length; ) {
    const len = dv.getUint32(at);
    const type = String.fromCharCode(png[at + 4]!, png[at + 5]!, png[at + 6]!, png[at + 7]!);
    const data = png.subarray(at + 8, at + 8 + len);
    if (data.length !== len) return null;
    if (type === "IHDR") {
      width = dv.getUint32(at + 8);
      height = dv.getUint32(at + 12);
      depth = png[at + 16]!;
      color = png[at + 17]!;
      interlace = png[at + 20]!;
    } else if (type === "PLTE") palette = data;
    else if (type === "tRNS") trns = data;
    else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") break;
    at += 12 + len;
  }
  const channels = CHANNELS[color];
  if (
    !channels ||
    !(depth === 8 || depth === 16) ||
    interlace !== 0 ||
    width < 1 ||
    height < 1 ||
    width * height > maxPixels
  )
    return null;
  if (color === 3 && (!palette || depth !== 8)) return null;
  const raw = await inflate(new Uint8Array(await new Blob(idat).arrayBuffer())).catch(() => null);
  const bpp = (channels * depth) / 8;
  const stride = width * bpp;
  if (!raw || raw.length < height * (stride + 1)) return null;

  // Undo the per-row filters in place.
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = px.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? px.subarray((y - 1) * stride, y * stride) : null;
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? row[x - bpp]! : 0;
      const b = up ? up[x]! : 0;
      const c = up && x >= bpp ? up[x - bpp]! : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) return null;
      row[x] = (src[x]! + pred) & 0xff;
    }
  }

  const rgba = new Uint8Array(width * height * 4);
  const step = depth / 8; // 16-bit samples: the high byte
  for (let i = 0; i < width * height; i++) {
    const s = (k: number) => px[i * bpp + k * step]!;
    let pixel: number[];
    if (color === 0) pixel = [s(0), s(0), s(0), 255];
    else if (color === 4) pixel = [s(0), s(0), s(0), s(1)];
    else if (color === 2) pixel = [s(0), s(1), s(2), 255];
    else if (color === 6) pixel = [s(0), s(1), s(2), s(3)];
    else {
      const idx = s(0);
      pixel = [
        palette?.[idx * 3] ?? 0,
        palette?.[idx * 3 + 1] ?? 0,
        palette?.[idx * 3 + 2] ?? 0,
        trns && idx < trns.length ? (trns[idx] ?? 255) : 255,
      ];
    }
    rgba.set(pixel, i * 4);
  }
  return { width, height, rgba };
}

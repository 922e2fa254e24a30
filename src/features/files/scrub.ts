/**
 * Location privacy: removes metadata (EXIF with its GPS position, XMP, IPTC, text chunks) from
 * JPEG, PNG and WebP bytes while they stream, IN PLACE: every byte keeps its offset, so the file's
 * length does not change and the scrubber fits streamed puts of known length and tus offsets alike.
 *
 * - JPEG: APP1 segments (EXIF, XMP), APP13 (IPTC) and COM are zeroed; an EXIF segment is rewritten
 *   as a minimal EXIF that keeps only the Orientation tag (so portrait photos stay upright).
 *   Embedded images after the first EOI (MPF: gain maps, depth) are scrubbed the same way; any
 *   other trailer after the last EOI is zeroed.
 * - PNG: eXIf, tEXt, zTXt and iTXt chunks become a private ancillary `juNk` chunk of zeros (with
 *   its CRC recomputed), which decoders skip; bytes after IEND are zeroed.
 * - WebP: EXIF and `XMP ` chunks become RIFF `JUNK` chunks of zeros, the VP8X flags drop them;
 *   bytes past the RIFF size are zeroed.
 * Bytes the scrubber cannot parse (a broken structure) are zeroed from there on: fail closed.
 *
 * The scrubber holds bytes back only while it needs them to decide (a segment or chunk header, an
 * EXIF segment up to 64 KiB). `snapshot()` is its state at the last byte it released, as JSON, so
 * a tus upload can persist it between PATCH requests; held bytes are then not acknowledged and
 * the client sends them again.
 */
import { HeldStream } from "./held-stream";

export type ScrubKind = "jpeg" | "png" | "webp";

/** The scrubbable kind of a content type, or null. */
export function scrubKindOf(contentType: string): ScrubKind | null {
  return contentType === "image/jpeg"
    ? "jpeg"
    : contentType === "image/png"
      ? "png"
      : contentType === "image/webp"
        ? "webp"
        : null;
}

/**
 * Image types that can carry EXIF/XMP (and so a GPS position) in a place the in-place scrubber
 * does not reach: refused where metadata must be removed.
 */
export const unscrubbableImageTypes = new Set([
  "image/heic",
  "image/heif",
  "image/avif",
  "image/tiff",
  "image/jxl",
  "image/x-canon-cr3",
]);

type Mode =
  /** Collect `need` header bytes in `held`, then decide. */
  | "hdr"
  /** Release `left` bytes as they are. */
  | "pass"
  /** Release `left` zeros instead of the bytes (PNG: feeding the CRC). */
  | "zero"
  /** JPEG: an APP1 payload of `left` bytes, held until complete. */
  | "exif"
  /** JPEG: entropy-coded data, scanned for the next marker. */
  | "entropy"
  /** Everything from here on becomes zeros. */
  | "rest";

/** What the header being collected is. */
type Hdr =
  | "jpeg-soi"
  | "jpeg-marker"
  | "jpeg-len"
  | "jpeg-after-eoi"
  | "png-sig"
  | "png-chunk"
  | "png-crc"
  | "webp-riff"
  | "webp-chunk"
  | "webp-vp8x";

export interface ScrubState {
  kind: ScrubKind;
  /** Bytes released so far (absolute offset in the file). */
  pos: number;
  mode: Mode;
  hdr: Hdr;
  need: number;
  left: number;
  /** JPEG: the current segment's marker; PNG: whether the chunk was replaced; WebP: pad after a chunk. */
  seg: number;
  /** PNG: running CRC of a replaced chunk. WebP: end of the RIFF data. */
  acc: number;
  /** What follows the current pass/zero region. */
  after: Hdr | "entropy";
}

export const initialScrubState = (kind: ScrubKind): ScrubState => ({
  kind,
  pos: 0,
  mode: "hdr",
  hdr: kind === "jpeg" ? "jpeg-soi" : kind === "png" ? "png-sig" : "webp-riff",
  need: kind === "jpeg" ? 2 : kind === "png" ? 8 : 12,
  left: 0,
  seg: 0,
  acc: 0,
  after: "jpeg-marker",
});

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
/** CRC-32 (PNG) update over `b`; start with 0xffffffff, finish with `^ 0xffffffff`. */
function crcUpdate(crc: number, b: Uint8Array): number {
  let c = crc;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}
/** CRC-32 update over `n` zero bytes. */
function crcZeros(crc: number, n: number): number {
  let c = crc;
  for (let i = 0; i < n; i++) c = CRC_TABLE[c & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

const ascii = (s: string) => Uint8Array.from(s, (ch) => ch.charCodeAt(0));
const eq = (b: Uint8Array, at: number, s: string) => s.split("").every((ch, i) => b[at + i] === ch.charCodeAt(0));
const PNG_SCRUBBED = new Set(["eXIf", "tEXt", "zTXt", "iTXt"]);
const PNG_JUNK = ascii("juNk");
const WEBP_JUNK = ascii("JUNK");

/**
 * The EXIF Orientation (1-8) from an APP1 payload that starts with `Exif\0\0`, when the bytes
 * reach it; "more" when `complete` is false and IFD0 is not fully there yet; null when absent.
 */
function exifOrientation(p: Uint8Array, complete = true): number | null | "more" {
  if (p.length < 6) return complete ? null : "more";
  if (!eq(p, 0, "Exif\0\0")) return null;
  const t = p.subarray(6);
  if (t.length < 8) return complete ? null : "more";
  const le = t[0] === 0x49 && t[1] === 0x49;
  if (!le && !(t[0] === 0x4d && t[1] === 0x4d)) return null;
  const dv = new DataView(t.buffer, t.byteOffset, t.byteLength);
  const ifd = dv.getUint32(4, le);
  if (ifd + 2 > t.length) return complete || ifd > 65535 ? null : "more";
  const count = dv.getUint16(ifd, le);
  for (let i = 0; i < count; i++) {
    const at = ifd + 2 + i * 12;
    if (at + 12 > t.length) return complete ? null : "more";
    if (dv.getUint16(at, le) === 0x0112 && dv.getUint16(at + 2, le) === 3) {
      const o = dv.getUint16(at + 8, le);
      return o >= 1 && o <= 8 ? o : null;
    }
  }
  return null;
}

/** `length` bytes of a minimal EXIF payload (big-endian TIFF, IFD0 = Orientation only), zero-padded. */
function minimalExif(length: number, orientation: number | null | "more"): Uint8Array {
  const out = new Uint8Array(length);
  if (orientation === null || orientation === "more" || orientation === 1 || length < 32) return out;
  out.set(ascii("Exif\0\0"));
  out.set([0x4d, 0x4d, 0x00, 0x2a, 0, 0, 0, 8], 6);
  out.set([0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, orientation, 0, 0, 0, 0, 0, 0], 14);
  return out;
}

export class Scrubber extends HeldStream<ScrubState> {
  constructor(state: ScrubState) {
    super({ ...state });
  }

  /** The state at the last released byte (held bytes excluded). */
  snapshot(): ScrubState {
    return { ...this.s };
  }

  /**
   * The input ended for good (the file is complete): releases what is held. A header cut short is
   * zeroed; an EXIF segment cut short keeps the Orientation if it got that far.
   */
  end(): Uint8Array[] {
    if (!this.heldBytes) return [];
    const held = this.takeHeld();
    const out: Uint8Array[] = [];
    if (this.s.mode === "exif") this.emit(out, minimalExif(held.length, orientationOf(held, true)));
    else this.emit(out, new Uint8Array(held.length));
    this.s.mode = "rest";
    return out;
  }

  /**
   * The input paused (a tus PATCH ended before the file did). When this instance has released
   * nothing yet and holds an EXIF segment (a client sending small chunks), the segment is
   * released now, so the upload always progresses: rewritten when the Orientation is in the held
   * bytes, else zeroed (the orientation is lost). Otherwise held bytes stay unreleased; the
   * client sends them again.
   */
  pause(): Uint8Array[] {
    if (this.released > 0 || this.s.mode !== "exif" || !this.heldBytes) return [];
    const held = this.takeHeld();
    const out: Uint8Array[] = [];
    const o = orientationOf(held, false);
    this.emit(out, minimalExif(held.length, o));
    this.s.mode = "zero";
    this.s.left -= held.length;
    this.s.after = "jpeg-marker";
    this.s.acc = 0;
    if (this.s.left === 0) this.next(this.s.after);
    return out;
  }

  /** Starts collecting a header, or entropy scanning. */
  private next(h: Hdr | "entropy") {
    if (h === "entropy") {
      this.s.mode = "entropy";
      return;
    }
    this.s.mode = "hdr";
    this.s.hdr = h;
    this.s.need = {
      "jpeg-soi": 2,
      "jpeg-marker": 2,
      "jpeg-len": 2,
      "jpeg-after-eoi": 2,
      "png-sig": 8,
      "png-chunk": 8,
      "png-crc": 4,
      "webp-riff": 12,
      "webp-chunk": 8,
      "webp-vp8x": 10,
    }[h];
  }

  private region(mode: "pass" | "zero", left: number, after: Hdr | "entropy") {
    this.s.mode = mode;
    this.s.left = left;
    this.s.after = after;
    if (left === 0) this.next(after);
  }

  private broken(out: Uint8Array[], held: Uint8Array) {
    this.emit(out, new Uint8Array(held.length));
    this.s.mode = "rest";
  }

  /** Processes bytes of `c` from `i`; returns where it stopped. */
  protected step(c: Uint8Array, i: number, out: Uint8Array[]): number {
    const s = this.s;
    switch (s.mode) {
      case "rest": {
        this.emit(out, new Uint8Array(c.length - i));
        return c.length;
      }
      case "pass":
      case "zero": {
        const k = Math.min(s.left, c.length - i);
        if (s.mode === "pass") this.emit(out, c.subarray(i, i + k));
        else {
          this.emit(out, new Uint8Array(k));
          if (s.kind === "png") s.acc = crcZeros(s.acc, k);
        }
        s.left -= k;
        if (s.left === 0) this.next(s.after);
        return i + k;
      }
      case "exif": {
        const k = Math.min(s.left - this.heldBytes, c.length - i);
        this.hold(c.subarray(i, i + k));
        if (this.heldBytes === s.left) {
          const held = this.takeHeld();
          this.emit(out, minimalExif(held.length, orientationOf(held, true)));
          s.left = 0;
          this.next("jpeg-marker");
        }
        return i + k;
      }
      case "entropy": {
        // Entropy-coded data: 0xFF is followed by 0x00 (stuffing), RSTn, or a fill 0xFF; anything else is a marker.
        let j = i;
        for (;;) {
          const ff = c.indexOf(0xff, j);
          if (ff < 0 || ff === c.length - 1) {
            const end = ff < 0 ? c.length : ff;
            this.emit(out, c.subarray(i, end));
            if (ff < 0) return c.length;
            this.next("jpeg-marker");
            this.hold(c.subarray(ff));
            return c.length;
          }
          const code = c[ff + 1]!;
          if (code === 0x00 || (code >= 0xd0 && code <= 0xd7)) {
            j = ff + 2;
            continue;
          }
          if (code === 0xff) {
            j = ff + 1;
            continue;
          }
          this.emit(out, c.subarray(i, ff));
          this.next("jpeg-marker");
          return ff;
        }
      }
      case "hdr": {
        const k = Math.min(s.need - this.heldBytes, c.length - i);
        this.hold(c.subarray(i, i + k));
        if (this.heldBytes === s.need) this.decide(this.takeHeld(), out);
        return i + k;
      }
    }
  }

  /** A complete header is in `h`: release it (possibly changed) and choose what follows. */
  private decide(h: Uint8Array, out: Uint8Array[]) {
    const s = this.s;
    const dv = new DataView(h.buffer, h.byteOffset, h.byteLength);
    switch (s.hdr) {
      case "jpeg-soi":
        if (h[0] !== 0xff || h[1] !== 0xd8) return this.broken(out, h);
        this.emit(out, h);
        return this.next("jpeg-marker");
      case "jpeg-after-eoi":
        // Another image follows (MPF), or a trailer: scrub the image, zero the trailer.
        if (h[0] === 0xff && h[1] === 0xd8) {
          this.emit(out, h);
          return this.next("jpeg-marker");
        }
        return this.broken(out, h);
      case "jpeg-marker": {
        if (h[0] !== 0xff) return this.broken(out, h);
        const code = h[1]!;
        if (code === 0xff) {
          // A fill byte: release one 0xFF, keep the other as the start of the marker.
          this.emit(out, h.subarray(0, 1));
          this.hold(h.subarray(1));
          return;
        }
        this.emit(out, h);
        if (code === 0xd9) return this.next("jpeg-after-eoi");
        if (code === 0x00 || code === 0x01 || code === 0xd8 || (code >= 0xd0 && code <= 0xd7))
          return this.next(code === 0x00 ? "entropy" : "jpeg-marker");
        s.seg = code;
        return this.next("jpeg-len");
      }
      case "jpeg-len": {
        const len = dv.getUint16(0);
        if (len < 2) return this.broken(out, h);
        this.emit(out, h);
        const payload = len - 2;
        if (s.seg === 0xe1) {
          s.mode = "exif";
          s.left = payload;
          if (payload === 0) this.next("jpeg-marker");
          return;
        }
        if (s.seg === 0xed || s.seg === 0xfe) return this.region("zero", payload, "jpeg-marker");
        return this.region("pass", payload, s.seg === 0xda ? "entropy" : "jpeg-marker");
      }
      case "png-sig":
        this.emit(out, h);
        return this.next("png-chunk");
      case "png-chunk": {
        const len = dv.getUint32(0);
        if (len > 0x7fffffff) return this.broken(out, h);
        const type = String.fromCharCode(h[4]!, h[5]!, h[6]!, h[7]!);
        if (PNG_SCRUBBED.has(type)) {
          h.set(PNG_JUNK, 4);
          this.emit(out, h);
          s.seg = 1;
          s.acc = crcUpdate(0xffffffff, PNG_JUNK);
          return this.region("zero", len, "png-crc");
        }
        this.emit(out, h);
        s.seg = type === "IEND" ? 2 : 0;
        return this.region("pass", len, "png-crc");
      }
      case "png-crc": {
        if (s.seg === 1) dv.setUint32(0, (s.acc ^ 0xffffffff) >>> 0);
        this.emit(out, h);
        if (s.seg === 2) {
          s.mode = "rest";
          return;
        }
        return this.next("png-chunk");
      }
      case "webp-riff": {
        if (!eq(h, 0, "RIFF") || !eq(h, 8, "WEBP")) return this.broken(out, h);
        this.emit(out, h);
        s.acc = 8 + dv.getUint32(4, true);
        return this.next("webp-chunk");
      }
      case "webp-chunk": {
        if (s.pos >= s.acc) return this.broken(out, h);
        const size = dv.getUint32(4, true);
        const padded = size + (size & 1);
        if (eq(h, 0, "EXIF") || eq(h, 0, "XMP ")) {
          h.set(WEBP_JUNK, 0);
          this.emit(out, h);
          return this.region("zero", padded, "webp-chunk");
        }
        this.emit(out, h);
        if (eq(h, 0, "VP8X") && size === 10) return this.next("webp-vp8x");
        return this.region("pass", padded, "webp-chunk");
      }
      case "webp-vp8x":
        h[0] = h[0]! & ~0x0c; // no EXIF (0x08), no XMP (0x04)
        this.emit(out, h);
        return this.next("webp-chunk");
    }
  }
}

const orientationOf = (payload: Uint8Array, complete: boolean) => exifOrientation(payload, complete);

/**
 * `src` scrubbed as one whole file (POST /v1/files): a TransformStream of the same length. The
 * caller's stream ends the file, so held bytes are released at the end.
 */
export function scrubStream(kind: ScrubKind): TransformStream<Uint8Array, Uint8Array> {
  const sc = new Scrubber(initialScrubState(kind));
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, ctl) {
      for (const b of sc.push(chunk)) ctl.enqueue(b);
    },
    flush(ctl) {
      for (const b of sc.end()) ctl.enqueue(b);
    },
  });
}

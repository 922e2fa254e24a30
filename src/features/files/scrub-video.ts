/**
 * Location privacy for MP4, MOV and M4A (ISO base media / QuickTime boxes), IN PLACE while the
 * bytes stream, wherever `moov` sits: boxes that carry a position (`©xyz`, 3GPP `loci`, `XMP_`,
 * an XMP `uuid`, and `meta` items whose key names a location, such as
 * `com.apple.quicktime.location.ISO6709`) become
 * `free` boxes of the same size filled with zeros. Every byte keeps its offset; media data passes
 * untouched. Only box headers, the 16-byte `uuid` type and a `keys` box (at most 64 KiB) are held.
 * A structure that breaks is zeroed from the break on (fail closed), as in files/scrub.ts.
 */
import { HeldStream } from "./held-stream";

export interface BoxScrubState {
  kind: "isobmff";
  /** Bytes released so far (absolute offset in the file). */
  pos: number;
  mode: "hdr" | "pass" | "zero" | "rest";
  /** What the header being collected is. */
  hdr: "box" | "box64" | "uuid" | "meta" | "keys";
  need: number;
  /** pass/zero: bytes left; -1 for "to the end of the file". */
  left: number;
  /** The open container boxes, innermost last: type and absolute end offset. */
  stack: { type: string; end: number }[];
  /** The current `meta`'s location key indexes (1-based); null when its `keys` box was lost (drop every item). */
  locKeys: number[] | null;
}

export const initialBoxScrubState = (): BoxScrubState => ({
  kind: "isobmff",
  pos: 0,
  mode: "hdr",
  hdr: "box",
  need: 8,
  left: 0,
  stack: [],
  locKeys: [],
});

/** Boxes opened and walked, by parent ("" = top level). */
const CONTAINERS: Record<string, string[]> = {
  "": ["moov", "meta"],
  moov: ["trak", "udta", "meta"],
  trak: ["udta", "meta"],
  udta: ["meta"],
  meta: ["ilst"],
};
/** Boxes that carry a position, by parent. */
const LOCATION: Record<string, string[]> = {
  udta: ["\u00a9xyz", "loci", "XMP_"],
  ilst: ["\u00a9xyz"],
};
const XMP_UUID = [0xbe, 0x7a, 0xcf, 0xcb, 0x97, 0xa9, 0x42, 0xe8, 0x9c, 0x71, 0x99, 0x94, 0x91, 0xe3, 0xaf, 0xac];
/** `meta` keys that name a position: `com.apple.quicktime.location.*`, ffmpeg's `location`, `©xyz`. */
const LOCATION_KEY = /location|gps|\u00a9xyz/i;
const KEYS_MAX = 64 * 1024;
const FREE = Uint8Array.from("free", (ch) => ch.charCodeAt(0));

const fourcc = (b: Uint8Array, at: number) => String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);
const u32 = (b: Uint8Array, at: number) => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

/** The location key indexes named in a `keys` box's payload; null when it does not parse. */
function locationKeys(payload: Uint8Array): number[] | null {
  if (payload.length < 8) return null;
  const count = u32(payload, 4);
  const out: number[] = [];
  let at = 8;
  for (let i = 1; i <= count; i++) {
    if (at + 8 > payload.length) return null;
    const size = u32(payload, at);
    if (size < 8 || at + size > payload.length) return null;
    // Key names are short; the first 256 bytes are enough to recognise a location key.
    const name = String.fromCharCode(...payload.subarray(at + 8, Math.min(at + size, at + 8 + 256)));
    if (LOCATION_KEY.test(name)) out.push(i);
    at += size;
  }
  return out;
}

export class BoxScrubber extends HeldStream<BoxScrubState> {
  /** The current box while its header is held: start, size, header length, type. */
  private box = { start: 0, size: 0, headerLen: 8, type: "" };

  constructor(state: BoxScrubState) {
    super({ ...state, stack: state.stack.map((b) => ({ ...b })), locKeys: state.locKeys && [...state.locKeys] });
  }

  /** The state at the last released byte (held bytes excluded). */
  snapshot(): BoxScrubState {
    return { ...this.s, stack: this.s.stack.map((b) => ({ ...b })), locKeys: this.s.locKeys && [...this.s.locKeys] };
  }

  /** The file ended: held bytes (a header or `keys` box cut short) are released as zeros. */
  end(): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (this.heldBytes) this.emit(out, new Uint8Array(this.takeHeld().length));
    this.s.mode = "rest";
    return out;
  }

  /**
   * The input paused (tus). When nothing was released yet and a `keys` box is held (a client
   * sending small chunks), it becomes a zeroed `free` box so the upload progresses; every item
   * of that `meta` is then dropped. Otherwise held bytes stay unreleased; the client resends them.
   */
  pause(): Uint8Array[] {
    if (this.released > 0 || this.s.mode !== "hdr" || this.s.hdr !== "keys" || !this.heldBytes) return [];
    const held = this.takeHeld();
    const out: Uint8Array[] = [];
    const header = held.subarray(0, 8);
    header.set(FREE, 4);
    this.emit(out, header);
    this.emit(out, new Uint8Array(held.length - 8));
    this.s.locKeys = null;
    this.region("zero", this.box.size - held.length);
    return out;
  }

  private collect(hdr: BoxScrubState["hdr"], need: number) {
    this.s.mode = "hdr";
    this.s.hdr = hdr;
    this.s.need = need;
  }

  private region(mode: "pass" | "zero", left: number) {
    this.s.mode = mode;
    this.s.left = left;
    if (left === 0) this.collect("box", 8);
  }

  private broken(out: Uint8Array[], held: Uint8Array) {
    this.emit(out, new Uint8Array(held.length));
    this.s.mode = "rest";
  }

  /** Closes finished containers; passes the padding at the end of one (e.g. a 4-byte terminator). */
  private boxBoundary(): boolean {
    const st = this.s.stack;
    while (st.length && st.at(-1)!.end <= this.s.pos) st.pop();
    const top = st.at(-1);
    if (top && top.end - this.s.pos < 8) {
      this.region("pass", top.end - this.s.pos);
      return true;
    }
    return false;
  }

  protected step(c: Uint8Array, i: number, out: Uint8Array[]): number {
    const s = this.s;
    switch (s.mode) {
      case "rest":
        this.emit(out, new Uint8Array(c.length - i));
        return c.length;
      case "pass":
      case "zero": {
        const k = s.left < 0 ? c.length - i : Math.min(s.left, c.length - i);
        this.emit(out, s.mode === "pass" ? c.subarray(i, i + k) : new Uint8Array(k));
        if (s.left > 0) {
          s.left -= k;
          if (s.left === 0) this.collect("box", 8);
        }
        return i + k;
      }
      case "hdr": {
        if (s.hdr === "box" && this.heldBytes === 0 && this.boxBoundary()) return i;
        const k = Math.min(s.need - this.heldBytes, c.length - i);
        this.hold(c.subarray(i, i + k));
        if (this.heldBytes === s.need) this.decide(out);
        return i + k;
      }
    }
  }

  /** The held bytes are complete: decide what the box is and what follows. */
  private decide(out: Uint8Array[]) {
    const s = this.s;
    const parent = s.stack.at(-1);
    switch (s.hdr) {
      case "box": {
        const h = this.held.length === 1 ? this.held[0]! : this.takeHeldKeep();
        const size = u32(h, 0);
        if (size === 1) return this.collect("box64", 16);
        const limit = parent ? parent.end - s.pos : -1;
        this.box = { start: s.pos, size: size === 0 ? limit : size, headerLen: 8, type: fourcc(h, 4) };
        return this.open(out);
      }
      case "box64": {
        const h = this.takeHeldKeep();
        const size = u32(h, 8) * 2 ** 32 + u32(h, 12);
        this.box = { start: s.pos, size, headerLen: 16, type: fourcc(h, 4) };
        return this.open(out);
      }
      case "uuid": {
        const h = this.takeHeld();
        const xmp = XMP_UUID.every((x, j) => h[this.box.headerLen + j] === x);
        if (xmp) return this.drop(out, h);
        this.emit(out, h);
        return this.region("pass", this.box.size - h.length);
      }
      case "meta": {
        // ISO `meta` is a full box (4 bytes of version and flags, zero); QuickTime's starts with a child box.
        const h = this.takeHeld();
        const at = this.box.headerLen;
        s.locKeys = [];
        if (u32(h, at) === 0) {
          this.emit(out, h);
          return this.collect("box", 8);
        }
        this.emit(out, h.subarray(0, at));
        this.held = [h.slice(at)];
        this.heldBytes = 4;
        return this.collect("box", 8);
      }
      case "keys": {
        const h = this.takeHeld();
        s.locKeys = locationKeys(h.subarray(this.box.headerLen));
        this.emit(out, h);
        return this.collect("box", 8);
      }
    }
  }

  /** The held bytes as one array, still counted as held. */
  private takeHeldKeep(): Uint8Array {
    const all = this.takeHeld();
    this.held = [all];
    this.heldBytes = all.length;
    return all;
  }

  /** A box header is complete (held): walk into it, drop it, hold it, or pass it. */
  private open(out: Uint8Array[]) {
    const s = this.s;
    const { size, headerLen, type } = this.box;
    const parent = s.stack.at(-1);
    const parentType = parent?.type ?? "";
    if (size < 0) {
      // Size 0 at the top level: the box runs to the end of the file (mdat).
      this.emit(out, this.takeHeld());
      return this.region("pass", -1);
    }
    if (size < headerLen || (parent && s.pos + size > parent.end)) return this.broken(out, this.takeHeld());
    if (LOCATION[parentType]?.includes(type)) return this.drop(out, this.takeHeld());
    if (parentType === "ilst") {
      const index = u32(this.held[0]!, 4);
      if (s.locKeys === null || s.locKeys.includes(index)) return this.drop(out, this.takeHeld());
    }
    if (type === "uuid" && ["", "moov", "trak", "udta"].includes(parentType)) {
      if (size < headerLen + 16) return this.broken(out, this.takeHeld());
      return this.collect("uuid", headerLen + 16);
    }
    if (type === "keys" && parentType === "meta") {
      if (size > KEYS_MAX) {
        s.locKeys = null;
        return this.drop(out, this.takeHeld());
      }
      return this.collect("keys", size);
    }
    if (CONTAINERS[parentType]?.includes(type) && size >= headerLen + 4) {
      s.stack.push({ type, end: s.pos + size });
      // `meta`: hold 4 more bytes to tell an ISO full box from a QuickTime `meta`.
      if (type === "meta") return this.collect("meta", headerLen + 4);
      this.emit(out, this.takeHeld());
      return this.collect("box", 8);
    }
    this.emit(out, this.takeHeld());
    return this.region("pass", size - headerLen);
  }

  /** Releases the box as a zero-filled `free` box of the same size. */
  private drop(out: Uint8Array[], held: Uint8Array) {
    const { size, headerLen } = this.box;
    const header = held.slice(0, headerLen);
    header.set(FREE, 4);
    this.emit(out, header);
    this.emit(out, new Uint8Array(held.length - headerLen));
    return this.region("zero", size - held.length);
  }
}

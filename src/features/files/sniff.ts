/**
 * File signatures (magic bytes) of the image, video and audio types Outpost accepts. A declared
 * media type is only stored when the first bytes agree with it: a client cannot store script as
 * `image/png` and have it served inline.
 */

import { AppError } from "../../errors";

/** Bytes of the file head that `matchesSignature` needs. */
export const SNIFF_BYTES = 64;

const ascii = (b: Uint8Array, at: number, s: string) => {
  if (b.length < at + s.length) return false;
  for (let i = 0; i < s.length; i++) if (b[at + i] !== s.charCodeAt(i)) return false;
  return true;
};
const bytes = (b: Uint8Array, at: number, sig: number[]) =>
  b.length >= at + sig.length && sig.every((x, i) => b[at + i] === x);

/** ISO base media file (MP4, MOV, HEIC, AVIF, 3GP, M4A): a box type at offset 4, `ftyp` and a major brand. */
const isoBrand = (b: Uint8Array): string | null =>
  ascii(b, 4, "ftyp") && b.length >= 12 ? String.fromCharCode(...b.subarray(8, 12)) : null;
const isoAny = (b: Uint8Array) => isoBrand(b) !== null;
const isoBrandIn = (brands: string[]) => (b: Uint8Array) => brands.includes(isoBrand(b) ?? "");
const quicktime = (b: Uint8Array) =>
  isoAny(b) || ["moov", "mdat", "wide", "free", "skip", "pnot"].some((t) => ascii(b, 4, t));
const riff = (form: string) => (b: Uint8Array) => ascii(b, 0, "RIFF") && ascii(b, 8, form);
const ebml = (b: Uint8Array) => bytes(b, 0, [0x1a, 0x45, 0xdf, 0xa3]);
const ogg = (b: Uint8Array) => ascii(b, 0, "OggS");
const mp3 = (b: Uint8Array) => ascii(b, 0, "ID3") || (b.length >= 2 && b[0] === 0xff && (b[1]! & 0xe0) === 0xe0);
const adts = (b: Uint8Array) => b.length >= 2 && b[0] === 0xff && (b[1]! & 0xf6) === 0xf0;

const signatures: Record<string, (b: Uint8Array) => boolean> = {
  "image/png": (b) => bytes(b, 0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  "image/jpeg": (b) => bytes(b, 0, [0xff, 0xd8, 0xff]),
  "image/gif": (b) => ascii(b, 0, "GIF87a") || ascii(b, 0, "GIF89a"),
  "image/webp": riff("WEBP"),
  "image/bmp": (b) => ascii(b, 0, "BM"),
  "image/tiff": (b) => bytes(b, 0, [0x49, 0x49, 0x2a, 0x00]) || bytes(b, 0, [0x4d, 0x4d, 0x00, 0x2a]),
  "image/heic": isoBrandIn(["heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"]),
  "image/heif": isoBrandIn(["heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"]),
  "image/avif": isoBrandIn(["avif", "avis", "mif1", "msf1"]),
  "video/mp4": isoAny,
  "video/quicktime": quicktime,
  "video/3gpp": isoAny,
  "video/webm": ebml,
  "video/x-matroska": ebml,
  "video/ogg": ogg,
  "audio/mpeg": mp3,
  "audio/mp4": isoAny,
  "audio/x-m4a": isoAny,
  "audio/aac": (b) => adts(b) || ascii(b, 0, "ADIF"),
  "audio/ogg": ogg,
  "audio/webm": ebml,
  "audio/wav": riff("WAVE"),
  "audio/x-wav": riff("WAVE"),
  "audio/flac": (b) => ascii(b, 0, "fLaC"),
};

const HEIF_BRANDS = ["heic", "heix", "hevc", "hevx", "heim", "heis"];
const AVIF_BRANDS = ["avif", "avis"];

/** The major and compatible brands of an ISO base media file's leading `ftyp` box (as far as `b` reaches). */
function isoBrands(b: Uint8Array): string[] {
  if (!ascii(b, 4, "ftyp")) return [];
  const end = Math.min(b.length, ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0);
  const brands = [];
  for (let at = 8; at + 4 <= end; at += at === 8 ? 8 : 4) brands.push(String.fromCharCode(...b.subarray(at, at + 4)));
  return brands;
}

/**
 * The real type of a file from its first bytes (up to `SNIFF_BYTES`), whatever was declared:
 * JPEG, PNG, WebP, GIF, TIFF (and TIFF-based raw), JPEG XL (container), HEIC/HEIF, AVIF, Canon
 * CR3, MP4 (any other ISO base media file, M4A too) or QuickTime (MOV); null for anything else.
 */
export function sniffType(head: Uint8Array): string | null {
  const b = head.subarray(0, SNIFF_BYTES);
  for (const t of ["image/jpeg", "image/png", "image/gif", "image/webp", "image/tiff"]) if (signatures[t]!(b)) return t;
  // BigTIFF (raw photos too); JPEG XL in its box container (which holds Exif and XMP boxes).
  if (bytes(b, 0, [0x49, 0x49, 0x2b, 0x00]) || bytes(b, 0, [0x4d, 0x4d, 0x00, 0x2b])) return "image/tiff";
  if (ascii(b, 4, "JXL ") && bytes(b, 8, [0x0d, 0x0a, 0x87, 0x0a])) return "image/jxl";
  const brands = isoBrands(b);
  if (brands.length) {
    const [major] = brands;
    if (major === "crx ") return "image/x-canon-cr3";
    if (AVIF_BRANDS.includes(major!)) return "image/avif";
    if (HEIF_BRANDS.includes(major!)) return "image/heic";
    if (major === "mif1" || major === "msf1") {
      if (brands.some((x) => AVIF_BRANDS.includes(x))) return "image/avif";
      return brands.some((x) => HEIF_BRANDS.includes(x)) ? "image/heic" : "image/heif";
    }
    return major === "qt  " ? "video/quicktime" : "video/mp4";
  }
  return signatures["video/quicktime"]!(b) ? "video/quicktime" : null;
}

/** Lower-cased media type without parameters (`Image/PNG; q=1` → `image/png`); empty for garbage. */
export function normalizeType(header: string | null | undefined): string {
  const t = (header ?? "").split(";")[0]!.trim().toLowerCase();
  return /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/.test(t) ? t : "";
}

/** True for image, video and audio types: those must have a known, matching signature. */
export const isMediaType = (type: string) => /^(image|video|audio)\//.test(type);

/** True for a media type whose signature Outpost knows (so it can be checked and served inline). */
export const isKnownMediaType = (type: string) => type in signatures;

/**
 * Whether `head` (the first bytes, up to `SNIFF_BYTES`) fits the declared type. Non-media types
 * are not checked; media types without a known signature never match.
 */
function matchesSignature(type: string, head: Uint8Array): boolean {
  if (!isMediaType(type)) return true;
  const check = signatures[type];
  return check ? check(head) : false;
}

/** 415 unless `head` (the file's first bytes) fits the declared type. */
export function assertSignature(type: string, head: Uint8Array): void {
  if (!matchesSignature(type, head.subarray(0, SNIFF_BYTES)))
    throw new AppError("unsupported_media_type", `The bytes are not a ${type} file.`);
}

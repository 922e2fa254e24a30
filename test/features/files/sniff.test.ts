/** The real type of a file from its first bytes, whatever was declared (files/sniff.ts `sniffType`). */
import { describe, expect, it } from "vitest";
import { sniffType } from "../../../src/features/files/sniff";
import { media } from "../../fixtures";
import { jpegBytes, pngBytes } from "./helpers";

const ascii = (s: string) => Uint8Array.from(s, (ch) => ch.charCodeAt(0));
const ftyp = (major: string, ...compatible: string[]) => {
  const b = new Uint8Array(16 + 4 * compatible.length);
  new DataView(b.buffer).setUint32(0, b.length);
  b.set(ascii(`ftyp${major}`), 4);
  for (const [i, c] of compatible.entries()) b.set(ascii(c), 16 + 4 * i);
  return b;
};

describe("sniffType", () => {
  it("tells real files made by the image tools and ffmpeg", () => {
    expect(sniffType(media.jpeg)).toBe("image/jpeg");
    expect(sniffType(media.png)).toBe("image/png");
    expect(sniffType(media.webp)).toBe("image/webp");
    expect(sniffType(media.gif)).toBe("image/gif");
    expect(sniffType(media.heic)).toBe("image/heic");
    expect(sniffType(media.avif)).toBe("image/avif");
    expect(sniffType(media.mp4Loci)).toBe("video/mp4");
    expect(sniffType(media.movKeys)).toBe("video/quicktime");
    expect(sniffType(media.movXyz)).toBe("video/quicktime");
  });

  it("reads ISO brands: HEIF by a compatible brand, M4A and 3GP as MP4, Canon CR3 apart", () => {
    expect(sniffType(ftyp("mif1", "mif1", "heic"))).toBe("image/heic");
    expect(sniffType(ftyp("mif1", "avif"))).toBe("image/avif");
    expect(sniffType(ftyp("mif1", "miaf"))).toBe("image/heif");
    expect(sniffType(ftyp("M4A ", "isom"))).toBe("video/mp4");
    expect(sniffType(ftyp("3gp4"))).toBe("video/mp4");
    expect(sniffType(ftyp("crx ", "isom"))).toBe("image/x-canon-cr3");
  });

  it("knows TIFF and BigTIFF, the JPEG XL container, QuickTime without ftyp; null for the rest", () => {
    expect(sniffType(new Uint8Array([0x49, 0x49, 0x2a, 0, 8, 0, 0, 0]))).toBe("image/tiff");
    expect(sniffType(new Uint8Array([0x4d, 0x4d, 0, 0x2b, 0, 8, 0, 0]))).toBe("image/tiff");
    expect(sniffType(new Uint8Array([0, 0, 0, 12, ...ascii("JXL "), 0x0d, 0x0a, 0x87, 0x0a]))).toBe("image/jxl");
    expect(sniffType(new Uint8Array([0, 0, 0, 8, ...ascii("wide"), 0, 0, 0, 8, ...ascii("mdat")]))).toBe(
      "video/quicktime",
    );
    expect(sniffType(ascii("<html><script>alert(1)</script>"))).toBeNull();
    expect(sniffType(new Uint8Array())).toBeNull();
    expect(sniffType(jpegBytes(4))).toBe("image/jpeg");
    expect(sniffType(pngBytes(4))).toBeNull();
  });
});

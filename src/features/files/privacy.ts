/**
 * Location privacy on the way in: whether a new file loses its metadata (public files; every file
 * with STRIP_IMAGE_METADATA=all) and which in-place scrubber does it, chosen from the file's REAL
 * type, sniffed from its first bytes, whatever type was declared (files/sniff.ts).
 */
import type { Config } from "../../config";
import { AppError } from "../../errors";
import type { Visibility } from "./schemas";
import { initialScrubState, Scrubber, type ScrubState, scrubKindOf, unscrubbableImageTypes } from "./scrub";
import { BoxScrubber, type BoxScrubState, initialBoxScrubState } from "./scrub-video";
import { sniffType } from "./sniff";

/** Which scrubber a file's bytes pass through: images (files/scrub.ts) or MP4/MOV/M4A (files/scrub-video.ts). */
export type ScrubPlan = "jpeg" | "png" | "webp" | "isobmff";
/** A scrubber's state at its last released byte (kept with a tus upload between requests). */
export type AnyScrubState = ScrubState | BoxScrubState;

/** What both scrubbers offer: same-length, in-place output; held bytes released on `end`. */
export interface InPlaceScrubber {
  released: number;
  push(chunk: Uint8Array): Uint8Array[];
  end(): Uint8Array[];
  pause(): Uint8Array[];
  snapshot(): AnyScrubState;
}

/** The `scrub` of a tus upload whose first bytes have not arrived yet: the plan waits for them. */
export const SCRUB_PENDING = "pending";

/** True when a new file's metadata must go: public files, and every file with STRIP_IMAGE_METADATA=all. */
export const stripsMetadata = (config: Config, visibility: Visibility) =>
  visibility === "public" || config.stripImageMetadata === "all";

const refusal = (type: string, visibility: Visibility) =>
  new AppError(
    "unsupported_media_type",
    `${type} files may carry a location that Outpost cannot remove; ` +
      `upload ${visibility === "public" ? "public " : ""}images as JPEG, PNG or WebP.`,
  );

/**
 * Before any byte is read: 415 when metadata must go and the DECLARED type is one whose metadata
 * the scrubbers cannot reach (HEIC, HEIF, AVIF, TIFF). The real type is checked again on the bytes.
 */
export function refuseDeclaredUnscrubbable(config: Config, declared: string, visibility: Visibility): void {
  if (stripsMetadata(config, visibility) && unscrubbableImageTypes.has(declared)) throw refusal(declared, visibility);
}

/**
 * The scrubber for a file whose first bytes are `head` (at least `SNIFF_BYTES` of them, or the
 * whole file), by its real type; null when nothing needs removing. 415 for a real HEIC, HEIF, AVIF
 * or TIFF (declared as anything, `application/octet-stream` included).
 */
export function scrubPlan(head: Uint8Array, visibility: Visibility): ScrubPlan | null {
  const real = sniffType(head);
  if (!real) return null;
  if (unscrubbableImageTypes.has(real)) throw refusal(real, visibility);
  if (real === "video/mp4" || real === "video/quicktime") return "isobmff";
  return scrubKindOf(real);
}

export const initialPlanState = (plan: ScrubPlan): AnyScrubState =>
  plan === "isobmff" ? initialBoxScrubState() : initialScrubState(plan);

export const scrubberFor = (state: AnyScrubState): InPlaceScrubber =>
  state.kind === "isobmff" ? new BoxScrubber(state) : new Scrubber(state);

/** A whole file scrubbed by `plan` (POST /v1/files): a TransformStream of the same length. */
export function planStream(plan: ScrubPlan): TransformStream<Uint8Array, Uint8Array> {
  const sc = scrubberFor(initialPlanState(plan));
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, ctl) {
      for (const b of sc.push(chunk)) ctl.enqueue(b);
    },
    flush(ctl) {
      for (const b of sc.end()) ctl.enqueue(b);
    },
  });
}

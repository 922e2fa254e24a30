/** What the streaming scrubbers (scrub.ts, scrub-video.ts) share: bytes held back until a decision. */
export abstract class HeldStream<S extends { pos: number }> {
  protected s: S;
  protected held: Uint8Array[] = [];
  protected heldBytes = 0;
  /** Bytes released by this instance (since it was created or restored). */
  released = 0;

  protected constructor(state: S) {
    this.s = state;
  }

  /** Bytes held back, not yet released. */
  get holding(): number {
    return this.heldBytes;
  }

  /** Scrubs the next chunk; returns the bytes it can release now (in order). */
  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let i = 0;
    while (i < chunk.length) i = this.step(chunk, i, out);
    return out;
  }

  /** Consumes input from `c[i]` on; returns where it stopped. */
  protected abstract step(c: Uint8Array, i: number, out: Uint8Array[]): number;

  /** Releases `b` (counted in the stream's position). */
  protected emit(out: Uint8Array[], b: Uint8Array) {
    if (!b.length) return;
    out.push(b);
    this.s.pos += b.length;
    this.released += b.length;
  }

  /** Holds a copy of `b` back until the scrubber decides what it is. */
  protected hold(b: Uint8Array) {
    this.held.push(b.slice());
    this.heldBytes += b.length;
  }

  /** The held bytes as one array; nothing is held afterwards. */
  protected takeHeld(): Uint8Array {
    const all = new Uint8Array(this.heldBytes);
    let at = 0;
    for (const h of this.held) {
      all.set(h, at);
      at += h.length;
    }
    this.held = [];
    this.heldBytes = 0;
    return all;
  }
}

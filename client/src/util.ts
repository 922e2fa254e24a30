/** Small helpers shared by the modules: ids, backoff, a typed event emitter. */

export const noop = (): void => {};

const cryptoObj = (globalThis as { crypto?: { getRandomValues?<T extends Uint8Array>(a: T): T } }).crypto;

/**
 * Random bytes: `crypto.getRandomValues` when the platform has it (Hermes: add react-native-get-random-values), else
 * Math.random.
 */
export function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  if (cryptoObj?.getRandomValues) cryptoObj.getRandomValues(b);
  else for (let i = 0; i < n; i++) b[i] = (Math.random() * 256) | 0;
  return b;
}

/**
 * A UUIDv7 (time-sortable, like the server's ids): record ids made on the device, idempotency keys, message
 * clientIds.
 */
export function uuid(now = Date.now()): string {
  const b = randomBytes(16);
  for (let i = 0; i < 6; i++) b[i] = Math.floor(now / 2 ** (8 * (5 - i))) & 0xff;
  b[6] = ((b[6] as number) & 0x0f) | 0x70;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Exponential backoff with jitter: a delay in [d/2, d], d = min(max, min * 2^attempt). */
export function backoff(attempt: number, min: number, max: number): number {
  const d = Math.min(max, min * 2 ** Math.min(attempt, 20));
  return d / 2 + (Math.random() * d) / 2;
}

type Listener<A extends unknown[]> = (...args: A) => void;

/**
 * A typed event emitter; `on` returns the function that removes the listener. Listener errors never break the
 * emitter.
 */
export class Emitter<E extends { [K in keyof E]: unknown[] }> {
  private readonly l = new Map<keyof E, Set<Listener<never>>>();
  on<K extends keyof E>(event: K, cb: Listener<E[K]>): () => void {
    let s = this.l.get(event);
    if (!s) {
      s = new Set();
      this.l.set(event, s);
    }
    s.add(cb as Listener<never>);
    return () => void s.delete(cb as Listener<never>);
  }
  emit<K extends keyof E>(event: K, ...args: E[K]): void {
    for (const cb of [...(this.l.get(event) ?? [])]) {
      try {
        (cb as Listener<E[K]>)(...args);
      } catch (e) {
        console.error("outpost: listener failed", e);
      }
    }
  }
}

/** Structural equality for JSON values. */
export function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Runs async tasks one after another (read-modify-write on storage). */
export function serial(): <T>(task: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (task) => {
    const run = tail.then(task, task);
    tail = run.catch(noop);
    return run;
  };
}

/** PKCE (RFC 7636, S256) without WebCrypto (Hermes has none): a verifier and its SHA-256 challenge. */
import { randomBytes } from "./util.js";

const A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** base64url without padding (no `btoa`: older Hermes lacks it). */
export function b64url(b: number[]): string {
  let s = "";
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i]! << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    for (let k = 0; k < 4 && k <= b.length - i; k++) s += A[(n >> (18 - 6 * k)) & 63];
  }
  return s;
}

/**
 * SHA-256 (FIPS 180-4) of an ASCII string of at most 55 characters (one block; a verifier has 43). The constants
 * come from the primes, as the standard defines them.
 */
function sha256(s: string): number[] {
  const K: number[] = [];
  const H: number[] = [];
  for (let n = 2; K.length < 64; n++) {
    let p = 1;
    for (let d = 2; d * d <= n; d++) if (n % d < 1) p = 0;
    if (p) {
      if (H.length < 8) H.push((n ** 0.5 * 2 ** 32) | 0);
      K.push((n ** (1 / 3) * 2 ** 32) | 0);
    }
  }
  const W = Array<number>(16).fill(0);
  W[15] = s.length * 8;
  s += "\x80";
  for (let i = 0; i < s.length; i++) W[i >> 2]! |= s.charCodeAt(i) << (24 - (i % 4) * 8);
  const r = (x: number, n: number) => (x >>> n) | (x << (32 - n));
  const V = H.slice();
  for (let i = 0; i < 64; i++) {
    const x = W[i - 15]!;
    const y = W[i - 2]!;
    if (i > 15)
      W[i] = (W[i - 16]! + (r(x, 7) ^ r(x, 18) ^ (x >>> 3)) + W[i - 7]! + (r(y, 17) ^ r(y, 19) ^ (y >>> 10))) | 0;
    const [a, b, c, , e, f, g, h] = V as [number, number, number, number, number, number, number, number];
    const t1 = h + (r(e, 6) ^ r(e, 11) ^ r(e, 25)) + ((e & f) ^ (~e & g)) + K[i]! + W[i]!;
    V.unshift((t1 + (r(a, 2) ^ r(a, 13) ^ r(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0);
    V[4] = (V[4]! + t1) | 0;
    V.pop();
  }
  return H.flatMap((h, i) => {
    const x = (h + V[i]!) | 0;
    return [x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255];
  });
}

/** A fresh verifier (43 characters) and its S256 challenge. */
export function pkce(): { verifier: string; challenge: string } {
  const verifier = b64url([...randomBytes(32)]);
  return { verifier, challenge: b64url(sha256(verifier)) };
}

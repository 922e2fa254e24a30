/** Framework-free crypto helpers on WebCrypto: encodings, hashes, HMAC, constant-time compare, AES-GCM, PBKDF2. */
import { limits } from "../config";

const enc = new TextEncoder();

export function b64url(bytes: ArrayBuffer | Uint8Array): string {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let s = "";
  for (let i = 0; i < u8.length; i++) s += String.fromCharCode(u8[i]!);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function fromB64url(s: string): Uint8Array {
  const b = atob(s.replaceAll("-", "+").replaceAll("_", "/") + "===".slice((s.length + 3) % 4));
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
  return out;
}

/** Lowercase hex of bytes. */
export function hex(bytes: ArrayBuffer | Uint8Array): string {
  return [...(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes))]
    .map((x) => x.toString(16).padStart(2, "0"))
    .join("");
}

/** `n` random bytes, base64url-encoded (default 32 bytes = 256 bits). */
export function randomToken(n = 32): string {
  return b64url(crypto.getRandomValues(new Uint8Array(n)));
}

export async function sha256(data: string | Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", typeof data === "string" ? enc.encode(data) : data));
}

/** SHA-256 of a token as base64url: how refresh, reset and verification tokens are stored. */
export async function hashToken(token: string): Promise<string> {
  return b64url(await sha256(token));
}

/** Constant-time equality of two byte strings (length is not secret). */
function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return crypto.subtle.timingSafeEqual(a, b);
}

/**
 * Constant-time equality of two strings of the same length; strings of different lengths are
 * unequal at once, without encoding them (an access token is compared with the service key on
 * every request). The time tells a caller only whether the lengths matched: every value compared
 * here (the service key, hashes, nonces, CSRF tokens) is long and random, so its length gives
 * nothing away.
 */
export function safeEqualStr(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  const ea = enc.encode(a);
  const eb = enc.encode(b);
  // Different UTF-16 contents may encode to different byte lengths: unequal.
  if (ea.byteLength !== eb.byteLength) return false;
  return crypto.subtle.timingSafeEqual(ea, eb);
}

const hmacKeys = new Map<string, Promise<CryptoKey>>();

/** An HMAC-SHA256 key for one purpose, derived from a root secret with HKDF (so one secret serves many uses). */
export function purposeKey(rootSecret: string, purpose: string): Promise<CryptoKey> {
  const id = `${purpose}\u0000${rootSecret}`;
  let k = hmacKeys.get(id);
  if (!k) {
    k = (async () => {
      const ikm = await crypto.subtle.importKey("raw", enc.encode(rootSecret), "HKDF", false, ["deriveKey"]);
      return crypto.subtle.deriveKey(
        { name: "HKDF", hash: "SHA-256", salt: enc.encode("outpost"), info: enc.encode(purpose) },
        ikm,
        { name: "HMAC", hash: "SHA-256", length: 256 },
        false,
        ["sign", "verify"],
      );
    })();
    hmacKeys.set(id, k);
  }
  return k;
}

export async function hmac(key: CryptoKey, data: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(data)));
}

/** Verifies an HMAC in constant time (WebCrypto's verify is constant-time). */
export async function hmacVerify(key: CryptoKey, data: string, mac: Uint8Array): Promise<boolean> {
  return crypto.subtle.verify("HMAC", key, mac, enc.encode(data));
}

const aesKeys = new Map<string, Promise<CryptoKey>>();

/** An AES-256-GCM key for one purpose, derived from a root secret with HKDF (as `purposeKey`). */
function purposeAesKey(rootSecret: string, purpose: string): Promise<CryptoKey> {
  const id = `${purpose}\u0000${rootSecret}`;
  let k = aesKeys.get(id);
  if (!k) {
    k = (async () => {
      const ikm = await crypto.subtle.importKey("raw", enc.encode(rootSecret), "HKDF", false, ["deriveKey"]);
      return crypto.subtle.deriveKey(
        { name: "HKDF", hash: "SHA-256", salt: enc.encode("outpost"), info: enc.encode(`aes:${purpose}`) },
        ikm,
        { name: "AES-GCM", length: 256 },
        false,
        ["encrypt", "decrypt"],
      );
    })();
    aesKeys.set(id, k);
  }
  return k;
}

/** Encrypts text for storage: `v1.<iv>.<ciphertext>` (base64url, AES-GCM, a fresh 96-bit IV each time). */
export async function encryptText(rootSecret: string, purpose: string, plain: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv },
    await purposeAesKey(rootSecret, purpose),
    enc.encode(plain),
  );
  return `v1.${b64url(iv)}.${b64url(ct)}`;
}

/** Decrypts what `encryptText` made with the same secret and purpose; throws when it was tampered with. */
export async function decryptText(rootSecret: string, purpose: string, sealed: string): Promise<string> {
  const [version, iv, ct] = sealed.split(".");
  if (version !== "v1" || !iv || !ct) throw new Error("not an encrypted value");
  const key = await purposeAesKey(rootSecret, purpose);
  const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: fromB64url(iv) }, key, fromB64url(ct));
  return new TextDecoder().decode(plain);
}

// --- passwords ---------------------------------------------------------------------------

/** Stored format: `pbkdf2-sha256$<iterations>$<salt b64url>$<hash b64url>`, so the cost can be raised later. */
export async function hashPassword(password: string, iterations: number = limits.pbkdf2Iterations): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const hash = await pbkdf2(password, salt, iterations);
  return `pbkdf2-sha256$${iterations}$${b64url(salt)}$${b64url(hash)}`;
}

async function pbkdf2(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", enc.encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 256);
  return new Uint8Array(bits);
}

/** A hash of a random password, used to spend the same time when the account does not exist. */
const DUMMY_HASH = `pbkdf2-sha256$${limits.pbkdf2Iterations}$${"A".repeat(22)}$${"A".repeat(43)}`;

/**
 * Checks a password against a stored hash in constant time. With `stored` null (unknown user)
 * it still runs a full PBKDF2, so both cases take about the same time.
 * Returns whether it matched and whether the hash should be upgraded to the current cost.
 */
export async function verifyPassword(
  password: string,
  stored: string | null,
): Promise<{ ok: boolean; rehash: boolean }> {
  const parts = (stored ?? DUMMY_HASH).split("$");
  const iterations = Number(parts[1]);
  if (
    parts.length !== 4 ||
    parts[0] !== "pbkdf2-sha256" ||
    !Number.isInteger(iterations) ||
    iterations < 1 ||
    iterations > limits.pbkdf2Iterations
  ) {
    await pbkdf2(password, new Uint8Array(16), limits.pbkdf2Iterations);
    return { ok: false, rehash: false };
  }
  const actual = await pbkdf2(password, fromB64url(parts[2]!), iterations);
  const ok = timingSafeEqual(actual, fromB64url(parts[3]!)) && stored !== null;
  return { ok, rehash: ok && iterations < limits.pbkdf2Iterations };
}

/**
 * Signs the provider JWTs with WebCrypto: RS256 for Google's OAuth JWT-bearer grant (FCM) and
 * ES256 for APNs token auth. Keys arrive as PKCS#8 PEM secrets; imported keys are cached per
 * isolate so a batch of pushes imports each key once.
 */
import { b64url } from "./crypto";

export type JwtAlg = "RS256" | "ES256";

const ALGS = {
  RS256: { importAlg: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, signAlg: { name: "RSASSA-PKCS1-v1_5" } },
  // WebCrypto's ECDSA signature is r||s (IEEE P1363), which is exactly JWS's ES256 format.
  ES256: { importAlg: { name: "ECDSA", namedCurve: "P-256" }, signAlg: { name: "ECDSA", hash: "SHA-256" } },
} as const;

const enc = new TextEncoder();
const keyCache = new Map<string, Promise<CryptoKey>>();

/** PEM (with or without line breaks, or with literal `\n` from a pasted JSON string) to DER bytes. */
function pemToDer(pem: string): Uint8Array {
  const b64 = pem
    .replaceAll("\\n", "\n")
    .replace(/-----(BEGIN|END) [A-Z ]+-----/g, "")
    .replace(/\s+/g, "");
  const bin = atob(b64);
  const der = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) der[i] = bin.charCodeAt(i);
  return der;
}

/** Imports a PKCS#8 private key for signing; throws a plain Error (no key material in it) when it is not one. */
export function importSigningKey(pem: string, alg: JwtAlg): Promise<CryptoKey> {
  const id = `${alg}\u0000${pem}`;
  let key = keyCache.get(id);
  if (!key) {
    key = (async () => {
      try {
        return await crypto.subtle.importKey("pkcs8", pemToDer(pem), ALGS[alg].importAlg, false, ["sign"]);
      } catch {
        throw new Error(`the ${alg} private key is not a valid PKCS#8 PEM key`);
      }
    })();
    key.catch(() => keyCache.delete(id));
    keyCache.set(id, key);
  }
  return key;
}

/** A compact JWS: base64url(header).base64url(claims).base64url(signature). */
export async function signJwt(
  alg: JwtAlg,
  key: CryptoKey,
  header: Record<string, string>,
  claims: Record<string, string | number>,
): Promise<string> {
  const part = (value: object) => b64url(enc.encode(JSON.stringify(value)));
  const input = `${part({ alg, ...header })}.${part(claims)}`;
  const sig = await crypto.subtle.sign(ALGS[alg].signAlg, key, enc.encode(input));
  return `${input}.${b64url(sig)}`;
}

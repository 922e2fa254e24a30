/**
 * The WebAuthn relying party's checks (Web Authentication Level 3, §7.1 and §7.2) on WebCrypto: client data
 * (type, challenge, origin), authenticator data (rpIdHash, user present and verified, counter, the attested
 * credential), `none` and packed self attestation, COSE keys (ES256, RS256) and assertion signatures.
 * Every refusal is 401 `passkey_failed`; malformed bytes are refusals too, never a server fault.
 */
import { AppError } from "../../errors";
import { decodeCbor, decodeCborPrefix } from "../../lib/cbor";
import { b64url, fromB64url, sha256 } from "../../lib/crypto";
import { ecdsaRaw } from "../../lib/der";

/** COSE algorithms accepted: ES256 and RS256. */
export const COSE_ALGS = [-7, -257] as const;

export const refuse = (why: string): never => {
  throw new AppError("passkey_failed", `Passkey refused: ${why}.`);
};

/** Runs a check; a parse error (bad base64, JSON, CBOR or DER) is a refusal. */
export async function checked<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof AppError) throw e;
    return refuse("the credential is malformed");
  }
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Base64url only (no padding, no `+/`), as WebAuthn's JSON forms use. */
export function bytesOf(s: string, what: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) refuse(`${what} is not base64url`);
  return fromB64url(s);
}

/** What the relying party accepts: its id and the origins (web, and `android:apk-key-hash:` ones). */
export interface RelyingParty {
  id: string;
  origins: string[];
}

export interface ClientData {
  /** The challenge as the client sent it (base64url). */
  challenge: string;
  /** SHA-256 of the raw clientDataJSON: what the authenticator signed beside its data. */
  hash: Uint8Array;
}

/** Parses and checks clientDataJSON: its type and origin. The challenge is the caller's to check (single use). */
export async function checkClientData(
  rp: RelyingParty,
  raw: Uint8Array,
  type: "webauthn.create" | "webauthn.get",
): Promise<ClientData> {
  const data = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(raw)) as Record<
    string,
    unknown
  >;
  if (data.type !== type) refuse(`client data is not ${type}`);
  if (typeof data.challenge !== "string") refuse("no challenge");
  if (typeof data.origin !== "string" || !rp.origins.includes(data.origin)) refuse("origin not allowed");
  // A credential made in a cross-origin iframe: not one of ours.
  if (data.crossOrigin === true) refuse("cross-origin");
  return { challenge: data.challenge as string, hash: await sha256(raw) };
}

export interface AuthenticatorData {
  raw: Uint8Array;
  flags: number;
  counter: number;
  /** Only in a registration (AT flag): the new credential's id and COSE public key. */
  credential?: { id: Uint8Array; publicKey: Uint8Array };
}

const UP = 0x01;
const UV = 0x04;
const AT = 0x40;
const ED = 0x80;

/** Parses authenticator data and checks the rpIdHash and the user-present and user-verified flags. */
export async function checkAuthenticatorData(rp: RelyingParty, raw: Uint8Array): Promise<AuthenticatorData> {
  if (raw.length < 37) refuse("short authenticator data");
  if (!same(raw.subarray(0, 32), await sha256(rp.id))) refuse("made for another relying party");
  const flags = raw[32]!;
  if (!(flags & UP)) refuse("user not present");
  if (!(flags & UV)) refuse("user not verified");
  const counter = new DataView(raw.buffer, raw.byteOffset + 33, 4).getUint32(0);
  let pos = 37;
  let credential: AuthenticatorData["credential"];
  if (flags & AT) {
    if (raw.length < 55) refuse("short attested credential data");
    const len = (raw[53]! << 8) | raw[54]!;
    if (len < 16 || len > 1023 || 55 + len > raw.length) refuse("bad credential id length");
    const id = raw.slice(55, 55 + len);
    const key = raw.subarray(55 + len);
    const { end } = decodeCborPrefix(key);
    credential = { id, publicKey: key.slice(0, end) };
    pos = 55 + len + end;
  }
  if (flags & ED) pos += decodeCborPrefix(raw.subarray(pos)).end;
  if (pos !== raw.length) refuse("trailing bytes in authenticator data");
  return { raw, flags, counter, ...(credential ? { credential } : {}) };
}

/** A COSE public key (ES256 or RS256) imported for verifying, with its algorithm. */
export async function importCoseKey(cose: Uint8Array): Promise<{ alg: number; key: CryptoKey }> {
  const m = decodeCbor(cose);
  if (!(m instanceof Map)) return refuse("public key is not a COSE map");
  const alg = m.get(3);
  const bytes = (label: number) => {
    const v = m.get(label);
    return v instanceof Uint8Array ? v : refuse("incomplete public key");
  };
  if (alg === -7) {
    if (m.get(1) !== 2 || m.get(-1) !== 1) refuse("ES256 key not on P-256");
    const [x, y] = [bytes(-2), bytes(-3)];
    if (x.length !== 32 || y.length !== 32) refuse("bad P-256 point");
    const point = new Uint8Array(65);
    point[0] = 4;
    point.set(x, 1);
    point.set(y, 33);
    const key = await crypto.subtle.importKey("raw", point, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
    return { alg, key };
  }
  if (alg === -257) {
    if (m.get(1) !== 3) refuse("RS256 key is not RSA");
    const n = bytes(-1);
    if (n.length < 256) refuse("RSA key shorter than 2048 bits");
    const jwk = { kty: "RSA", n: b64url(n), e: b64url(bytes(-2)), alg: "RS256", ext: true };
    const key = await crypto.subtle.importKey("jwk", jwk, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, [
      "verify",
    ]);
    return { alg, key };
  }
  return refuse("algorithm not supported (ES256 and RS256 are)");
}

/** Verifies a WebAuthn signature over authenticatorData ‖ SHA-256(clientDataJSON). */
export async function verifySignature(
  k: { alg: number; key: CryptoKey },
  authData: Uint8Array,
  clientHash: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  const signed = new Uint8Array(authData.length + clientHash.length);
  signed.set(authData);
  signed.set(clientHash, authData.length);
  if (k.alg === -7) {
    return crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, k.key, ecdsaRaw(signature, 32), signed);
  }
  return crypto.subtle.verify("RSASSA-PKCS1-v1_5", k.key, signature, signed);
}

/** A checked registration: the new credential, ready to store. */
export interface NewCredential {
  id: Uint8Array;
  publicKey: Uint8Array;
  alg: number;
  counter: number;
}

/**
 * Checks an attestation object (after the client data): authenticator data, the credential's key, and the
 * statement: `none`, or `packed` self attestation (signed by the credential's own key). Attestation with a
 * certificate chain is not asked for (the options say `attestation: "none"`) and is refused.
 */
export async function checkAttestation(
  rp: RelyingParty,
  attestationObject: Uint8Array,
  clientHash: Uint8Array,
): Promise<NewCredential> {
  const att = decodeCbor(attestationObject);
  if (!(att instanceof Map)) return refuse("attestation is not a CBOR map");
  const [fmt, stmt, rawAuth] = [att.get("fmt"), att.get("attStmt"), att.get("authData")];
  if (!(rawAuth instanceof Uint8Array) || !(stmt instanceof Map)) return refuse("incomplete attestation");
  const auth = await checkAuthenticatorData(rp, rawAuth);
  if (!auth.credential) return refuse("no credential in the attestation");
  const key = await importCoseKey(auth.credential.publicKey);
  if (fmt === "none") {
    if (stmt.size !== 0) refuse("a none attestation with a statement");
  } else if (fmt === "packed") {
    const sig = stmt.get("sig");
    if (stmt.has("x5c") || stmt.has("ecdaaKeyId")) refuse("attestation certificates are not accepted");
    if (stmt.get("alg") !== key.alg || !(sig instanceof Uint8Array)) refuse("bad packed attestation");
    if (!(await verifySignature(key, rawAuth, clientHash, sig as Uint8Array))) refuse("bad attestation signature");
  } else {
    refuse("attestation format not supported");
  }
  return { id: auth.credential.id, publicKey: auth.credential.publicKey, alg: key.alg, counter: auth.counter };
}

/** The counter rule: when either counter is non-zero, the new one must be larger (else: a cloned authenticator?). */
export function counterOk(stored: number, seen: number): boolean {
  return (stored === 0 && seen === 0) || seen > stored;
}

/** The user handle of a user id (what options put in `user.id`, and assertions send back). */
export const userHandleOf = (userId: string) => b64url(new TextEncoder().encode(userId));

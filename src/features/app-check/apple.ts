/**
 * iOS App Attest (loaded on demand): an attestation's certificate chain to the configured root,
 * its nonce, app id, aaguid and key id; an assertion's signature by the attested key and its counter.
 * Apple's steps: "Validating apps that connect to your server" (developer.apple.com).
 */
import type { Config } from "../../config";
import { AppError } from "../../errors";
import { decodeCbor } from "../../lib/cbor";
import { b64url, fromB64url, sha256 } from "../../lib/crypto";
import { ecdsaRaw } from "../../lib/der";
import { type Certificate, parseCertificate, pemToDer, taggedOctets } from "./formats";

/** The App Attest nonce extension, OID 1.2.840.113635.100.8.2. */
const NONCE_OID = "2a864886f763640802";

const refuse = (why: string): never => {
  throw new AppError("app_check_failed", `App Attest: ${why}.`);
};

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);
const concat = (a: Uint8Array, b: Uint8Array) => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

/** Runs a check; a parse error (malformed base64, CBOR or DER) is a refusal, not a server fault. */
async function checked<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof AppError) throw e;
    return refuse(e instanceof Error ? e.message : "unreadable input");
  }
}

function cborMap(b64: string): Map<unknown, unknown> {
  const v = decodeCbor(fromB64url(b64));
  return v instanceof Map ? v : refuse("not a CBOR map");
}

const bytesIn = (m: Map<unknown, unknown>, key: string) => {
  const v = m.get(key);
  return v instanceof Uint8Array ? v : refuse(`no ${key}`);
};

async function signedBy(child: Certificate, parent: Certificate): Promise<boolean> {
  if (child.issuer !== parent.subject) return false;
  const key = await crypto.subtle.importKey("spki", parent.spki, { name: "ECDSA", namedCurve: parent.curve }, false, [
    "verify",
  ]);
  const size = parent.curve === "P-384" ? 48 : 32;
  return crypto.subtle.verify({ name: "ECDSA", hash: child.hash }, key, ecdsaRaw(child.signature, size), child.tbs);
}

async function verifyChain(cfg: Config, chain: Certificate[]): Promise<void> {
  const root = parseCertificate(pemToDer(cfg.appCheck.appleRoot));
  const now = Date.now();
  for (const [i, cert] of chain.entries()) {
    if (now < cert.notBefore || now > cert.notAfter) refuse("certificate not valid now");
    if (!(await signedBy(cert, chain[i + 1] ?? root))) refuse("chain not from the root");
  }
}

/** The parts of authenticator data App Attest uses. */
function authData(data: Uint8Array) {
  if (data.length < 37) refuse("short authenticator data");
  const counter = new DataView(data.buffer, data.byteOffset + 33, 4).getUint32(0);
  const credLen = data.length >= 55 ? (data[53]! << 8) | data[54]! : 0;
  return {
    rpIdHash: data.subarray(0, 32),
    counter,
    aaguid: new TextDecoder().decode(data.subarray(37, 53)),
    credentialId: data.subarray(55, 55 + credLen),
  };
}

async function appIdOf(cfg: Config, rpIdHash: Uint8Array): Promise<string> {
  for (const appId of cfg.appCheck.appleAppIds) if (same(await sha256(appId), rpIdHash)) return appId;
  return refuse("app id not allowed");
}

/** Verifies a first-time attestation for `keyId` over `challenge`; returns what to store about the key. */
export const verifyAttestation = (cfg: Config, keyId: string, attestation: string, challenge: string) =>
  checked(async () => {
    const keyIdBytes = fromB64url(keyId);
    const obj = cborMap(attestation);
    if (obj.get("fmt") !== "apple-appattest") refuse("not apple-appattest");
    const stmt = obj.get("attStmt");
    const x5c = stmt instanceof Map ? stmt.get("x5c") : null;
    if (!Array.isArray(x5c) || x5c.length < 1 || x5c.length > 4 || !x5c.every((c) => c instanceof Uint8Array))
      return refuse("no certificate chain");
    const chain = x5c.map((der: Uint8Array) => parseCertificate(der));
    await verifyChain(cfg, chain);
    const leaf = chain[0]!;
    const data = bytesIn(obj, "authData");
    const nonce = await sha256(concat(data, await sha256(challenge)));
    const ext = leaf.extensions.get(NONCE_OID) ?? refuse("no nonce");
    if (!same(taggedOctets(ext, 1), nonce)) refuse("wrong nonce");
    if (!same(await sha256(leaf.point), keyIdBytes)) refuse("wrong key id");
    const auth = authData(data);
    const appId = await appIdOf(cfg, auth.rpIdHash);
    if (auth.counter !== 0) refuse("counter not 0");
    // The aaguid: "appattestdevelop" for development builds, "appattest" and seven zero bytes for production.
    const environment = auth.aaguid === "appattestdevelop" ? "development" : "production";
    if (environment === "production" && auth.aaguid !== "appattest\0\0\0\0\0\0\0") refuse("wrong aaguid");
    if (!same(auth.credentialId, keyIdBytes)) refuse("wrong credential id");
    if (leaf.curve !== "P-256") refuse("key not P-256");
    return { keyId: b64url(keyIdBytes), appId, publicKey: b64url(leaf.spki), environment };
  });

/** Verifies an assertion by a stored key over `challenge`; returns its counter (the caller checks it grew). */
export const verifyAssertion = (
  cfg: Config,
  key: { appId: string; publicKey: string },
  assertion: string,
  challenge: string,
): Promise<number> =>
  checked(async () => {
    const obj = cborMap(assertion);
    const data = bytesIn(obj, "authenticatorData");
    const auth = authData(data);
    if (!cfg.appCheck.appleAppIds.includes(key.appId) || !same(auth.rpIdHash, await sha256(key.appId)))
      refuse("wrong app id");
    const nonce = await sha256(concat(data, await sha256(challenge)));
    const pub = await crypto.subtle.importKey(
      "spki",
      fromB64url(key.publicKey),
      { name: "ECDSA", namedCurve: "P-256" },
      false,
      ["verify"],
    );
    const raw = ecdsaRaw(bytesIn(obj, "signature"), 32);
    if (!(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, pub, raw, nonce))) refuse("bad signature");
    return auth.counter;
  });

/**
 * Test-only App Check material made with WebCrypto: a CA (root and intermediate) standing in for
 * Apple's App Attestation root, App Attest attestations and assertions built like a device builds
 * them (CBOR, DER), and Play Integrity tokens (JWE around JWS) under the app's own test keys.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { CompactEncrypt, CompactSign } from "jose";
import { app } from "../../../src/router";
import { freshIp } from "../../helpers/api";
import { concatBytes } from "../../helpers/bytes";

const te = new TextEncoder();
export const APP_ID = "TEAM123456.com.example.outpost";

// --- bytes -------------------------------------------------------------------------------

const fromHex = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (x) => Number.parseInt(x, 16));
export const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
export const sha256 = async (d: Uint8Array | string) =>
  new Uint8Array(await crypto.subtle.digest("SHA-256", typeof d === "string" ? te.encode(d) : d));

// --- DER ---------------------------------------------------------------------------------

function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const body = concatBytes(...parts);
  const n = body.length;
  const len = n < 128 ? [n] : n < 256 ? [0x81, n] : [0x82, n >> 8, n & 255];
  return concatBytes(Uint8Array.of(tag, ...len), body);
}
const seq = (...p: Uint8Array[]) => tlv(0x30, ...p);
const oid = (hex: string) => tlv(0x06, fromHex(hex));
const int = (b: Uint8Array) => {
  let v = b;
  while (v.length > 1 && v[0] === 0 && v[1]! < 0x80) v = v.subarray(1);
  return tlv(0x02, v[0]! >= 0x80 ? concatBytes(Uint8Array.of(0), v) : v);
};
const name = (cn: string) => seq(tlv(0x31, seq(oid("550403"), tlv(0x0c, te.encode(cn)))));
const time = (ms: number) => tlv(0x17, te.encode(`${new Date(ms).toISOString().slice(2, 19).replace(/[-:T]/g, "")}Z`));
const ECDSA_SHA256 = "2a8648ce3d040302";
const ECDSA_SHA384 = "2a8648ce3d040303";
export const NONCE_OID = "2a864886f763640802";

/** A DER ECDSA signature (r, s) from WebCrypto's raw r‖s. */
export function derSignature(raw: Uint8Array): Uint8Array {
  const h = raw.length / 2;
  return seq(int(raw.subarray(0, h)), int(raw.subarray(h)));
}

type Pair = CryptoKeyPair & { curve: "P-256" | "P-384" };
export async function ecPair(curve: "P-256" | "P-384" = "P-256"): Promise<Pair> {
  const p = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: curve }, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  return Object.assign(p, { curve });
}

export interface Issued {
  der: Uint8Array;
  subject: string;
  pair: Pair;
}

/** A certificate for `pair` named `subject`, signed by `issuer` (itself when absent). */
export async function certificate(
  subject: string,
  pair: Pair,
  issuer?: { subject: string; pair: Pair },
  o: { extensions?: [string, Uint8Array][]; notBefore?: number; notAfter?: number; hash?: "SHA-256" } = {},
): Promise<Issued> {
  const signer = issuer ?? { subject, pair };
  const sha = o.hash ?? (signer.pair.curve === "P-384" ? "SHA-384" : "SHA-256");
  const alg = seq(oid(sha === "SHA-384" ? ECDSA_SHA384 : ECDSA_SHA256));
  const spki = new Uint8Array((await crypto.subtle.exportKey("spki", pair.publicKey)) as ArrayBuffer);
  const exts = o.extensions?.length
    ? [tlv(0xa3, seq(...o.extensions.map(([id, v]) => seq(oid(id), tlv(0x04, v)))))]
    : [];
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Uint8Array.of(2))),
    tlv(
      0x02,
      crypto.getRandomValues(new Uint8Array(8)).map((x, i) => (i === 0 ? x & 0x7f : x)),
    ),
    alg,
    name(signer.subject),
    seq(time(o.notBefore ?? Date.now() - 86_400_000), time(o.notAfter ?? Date.now() + 365 * 86_400_000)),
    name(subject),
    spki,
    ...exts,
  );
  const raw = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: sha }, signer.pair.privateKey, tbs));
  return { der: seq(tbs, alg, tlv(0x03, Uint8Array.of(0), derSignature(raw))), subject, pair };
}

export const pem = (der: Uint8Array) => `-----BEGIN CERTIFICATE-----\n${b64(der)}\n-----END CERTIFICATE-----`;

/** A CA like Apple's: a P-384 root and an intermediate it signed. */
export async function testCa() {
  const root = await certificate("Test App Attestation Root CA", await ecPair("P-384"));
  const intermediate = await certificate("Test App Attestation CA 1", await ecPair("P-384"), root);
  return { root, intermediate, rootPem: pem(root.der) };
}

// --- CBOR --------------------------------------------------------------------------------

type Cbor = number | string | Uint8Array | Cbor[] | { [k: string]: Cbor };
function head(major: number, n: number): Uint8Array {
  if (n < 24) return Uint8Array.of((major << 5) | n);
  if (n < 256) return Uint8Array.of((major << 5) | 24, n);
  if (n < 65536) return Uint8Array.of((major << 5) | 25, n >> 8, n & 255);
  return Uint8Array.of((major << 5) | 26, n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255);
}
export function cbor(v: Cbor): Uint8Array {
  if (typeof v === "number") return head(0, v);
  if (typeof v === "string") return concatBytes(head(3, te.encode(v).length), te.encode(v));
  if (v instanceof Uint8Array) return concatBytes(head(2, v.length), v);
  if (Array.isArray(v)) return concatBytes(head(4, v.length), ...v.map(cbor));
  const entries = Object.entries(v);
  return concatBytes(head(5, entries.length), ...entries.flatMap(([k, x]) => [cbor(k), cbor(x)]));
}

// --- App Attest --------------------------------------------------------------------------

export const AAGUID_PROD = te.encode("appattest\0\0\0\0\0\0\0");
export const AAGUID_DEV = te.encode("appattestdevelop");

const u32 = (n: number) => Uint8Array.of(n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255);

/** A device: its App Attest key pair and key id (SHA-256 of the raw public key). */
export async function device() {
  const pair = await ecPair("P-256");
  const point = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
  const keyIdBytes = await sha256(point);
  return { pair, keyIdBytes, keyId: b64(keyIdBytes) };
}
type Device = Awaited<ReturnType<typeof device>>;
type Ca = Awaited<ReturnType<typeof testCa>>;

/** An attestation as the device makes it; `o` bends one part to test a refusal. */
export async function attestation(
  ca: Ca,
  dev: Device,
  challenge: string,
  o: { appId?: string; nonceChallenge?: string; counter?: number; aaguid?: Uint8Array; chain?: Uint8Array[] } = {},
): Promise<string> {
  const authData = concatBytes(
    await sha256(o.appId ?? APP_ID),
    Uint8Array.of(0x40),
    u32(o.counter ?? 0),
    o.aaguid ?? AAGUID_PROD,
    Uint8Array.of(0, dev.keyIdBytes.length),
    dev.keyIdBytes,
    cbor({ kty: 2 }),
  );
  const nonce = await sha256(concatBytes(authData, await sha256(o.nonceChallenge ?? challenge)));
  // As Apple's: the P-384 intermediate signs the leaf with ECDSA-SHA256.
  const leaf = await certificate(dev.keyId, dev.pair, ca.intermediate, {
    extensions: [[NONCE_OID, seq(tlv(0xa1, tlv(0x04, nonce)))]],
    hash: "SHA-256",
  });
  const x5c = o.chain ?? [leaf.der, ca.intermediate.der];
  return b64(cbor({ fmt: "apple-appattest", attStmt: { x5c, receipt: te.encode("receipt") }, authData }));
}

/** An assertion by the device's key over `challenge`, with `counter`. */
export async function assertion(dev: Device, challenge: string, counter: number, appId = APP_ID): Promise<string> {
  const authenticatorData = concatBytes(await sha256(appId), Uint8Array.of(0x40), u32(counter));
  const nonce = await sha256(concatBytes(authenticatorData, await sha256(challenge)));
  const raw = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, dev.pair.privateKey, nonce));
  return b64(cbor({ signature: derSignature(raw), authenticatorData }));
}

// --- Play Integrity ----------------------------------------------------------------------

export const PACKAGE = "com.example.outpost";
export const CERT_DIGEST = new Uint8Array(32).fill(7);

/** The app's Play keys (AES-256 to decrypt, EC P-256 to verify) and the vars that carry them. */
export async function playKeys() {
  const aes = crypto.getRandomValues(new Uint8Array(32));
  const signing = await ecPair("P-256");
  const spki = new Uint8Array((await crypto.subtle.exportKey("spki", signing.publicKey)) as ArrayBuffer);
  return {
    aes,
    signing,
    vars: { PLAY_INTEGRITY_DECRYPTION_KEY: b64(aes), PLAY_INTEGRITY_VERIFICATION_KEY: b64(spki) },
  };
}

/** A verdict that passes every check for `nonce`; callers override parts. */
export function verdict(nonce: string) {
  return {
    requestDetails: { requestPackageName: PACKAGE, timestampMillis: String(Date.now()), nonce },
    appIntegrity: {
      appRecognitionVerdict: "PLAY_RECOGNIZED",
      packageName: PACKAGE,
      certificateSha256Digest: [b64(CERT_DIGEST).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "")],
      versionCode: "42",
    },
    deviceIntegrity: { deviceRecognitionVerdict: ["MEETS_DEVICE_INTEGRITY"] },
    accountDetails: { appLicensingVerdict: "LICENSED" },
  };
}

/** An integrity token: the verdict signed (ES256) then encrypted (A256KW + A256GCM). */
export async function integrityToken(keys: Awaited<ReturnType<typeof playKeys>>, payload: object): Promise<string> {
  const jws = await new CompactSign(te.encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: "ES256" })
    .sign(keys.signing.privateKey);
  return new CompactEncrypt(te.encode(jws)).setProtectedHeader({ alg: "A256KW", enc: "A256GCM" }).encrypt(keys.aes);
}

// --- calling the app with its own configuration -----------------------------------------------

export type Vars = Partial<Record<keyof Env, string>>;

/** One request through `app.fetch` with env overrides (vars and secrets), settling `waitUntil`. */
export async function call(
  path: string,
  o: { vars?: Vars; body?: unknown; method?: string; headers?: Record<string, string> } = {},
) {
  const headers = new Headers(o.headers);
  headers.set("cf-connecting-ip", freshIp());
  if (o.body !== undefined) headers.set("content-type", "application/json");
  const req = new Request(`https://outpost.test${path}`, {
    method: o.method ?? (o.body !== undefined ? "POST" : "GET"),
    headers,
    body: o.body !== undefined ? JSON.stringify(o.body) : undefined,
  });
  const ctx = createExecutionContext();
  const res = await app.fetch(req, { ...env, ...o.vars }, ctx);
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  const body: any = text && (res.headers.get("content-type") ?? "").includes("json") ? JSON.parse(text) : text;
  return { status: res.status, body, text, headers: res.headers };
}

/** A fresh challenge. */
export async function challenge(vars: Vars = {}): Promise<string> {
  const res = await call("/v1/app-check/challenge", { body: {}, vars });
  if (res.status !== 201) throw new Error(`challenge: ${res.status} ${res.text}`);
  return res.body.challenge;
}

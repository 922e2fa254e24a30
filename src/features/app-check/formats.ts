/**
 * The binary formats App Attest speaks, parsed just far enough: CBOR (the attestation and assertion
 * objects), DER (X.509 certificates: the signed part, signature, key, validity, extensions) and
 * ECDSA signatures (DER → the raw r‖s WebCrypto verifies). Malformed input throws.
 */

const fail = (what: string): never => {
  throw new Error(`malformed ${what}`);
};

/** Decodes one CBOR item: byte and text strings, arrays and maps (all App Attest's objects hold). */
export function decodeCbor(data: Uint8Array): unknown {
  let pos = 0;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const take = (n: number) => {
    if (n > data.length - pos) fail("CBOR");
    pos += n;
    return pos - n;
  };
  const length = (info: number): number => {
    if (info < 24) return info;
    if (info === 24) return data[take(1)]!;
    if (info === 25) return view.getUint16(take(2));
    return fail("CBOR");
  };
  const item = (depth: number): unknown => {
    if (depth > 8) fail("CBOR");
    const head = data[take(1)]!;
    const major = head >> 5;
    const n = length(head & 31);
    if (major === 2) return data.slice(take(n), pos);
    if (major === 3)
      return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(data.subarray(take(n), pos));
    if (n > data.length - pos) fail("CBOR");
    if (major === 4) return Array.from({ length: n }, () => item(depth + 1));
    if (major === 5) {
      const map = new Map<unknown, unknown>();
      for (let i = 0; i < n; i++) map.set(item(depth + 1), item(depth + 1));
      return map;
    }
    return fail("CBOR");
  };
  const value = item(0);
  if (pos !== data.length) fail("CBOR");
  return value;
}

/** One DER element: its tag, its contents and its whole encoding. */
interface Tlv {
  tag: number;
  body: Uint8Array;
  all: Uint8Array;
  end: number;
}

function readTlv(buf: Uint8Array, at: number): Tlv {
  let p = at + 2;
  if (p > buf.length) fail("DER");
  let len = buf[at + 1]!;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 3) fail("DER");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[p++] ?? fail("DER"));
  }
  if (p + len > buf.length) fail("DER");
  return { tag: buf[at]!, body: buf.subarray(p, p + len), all: buf.subarray(at, p + len), end: p + len };
}

function children(t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = 0; p < t.body.length; p = out[out.length - 1]!.end) out.push(readTlv(t.body, p));
  return out;
}

const hexOf = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

const CURVES: Record<string, "P-256" | "P-384"> = { "2a8648ce3d030107": "P-256", "2b81040022": "P-384" };
const HASHES: Record<string, "SHA-256" | "SHA-384"> = { "2a8648ce3d040302": "SHA-256", "2a8648ce3d040303": "SHA-384" };

/** What chain checks need of an X.509 certificate (EC keys and ECDSA signatures only). */
export interface Certificate {
  tbs: Uint8Array;
  hash: "SHA-256" | "SHA-384";
  signature: Uint8Array;
  issuer: string;
  subject: string;
  notBefore: number;
  notAfter: number;
  /** SubjectPublicKeyInfo (for importKey "spki"), its curve and its raw point. */
  spki: Uint8Array;
  curve: "P-256" | "P-384";
  point: Uint8Array;
  /** Extension values (the OCTET STRING's contents) by OID in hex. */
  extensions: Map<string, Uint8Array>;
}

function derTime(t: Tlv): number {
  const s = new TextDecoder().decode(t.body);
  const m = /^(\d{2}|\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) ?? fail("time");
  let year = Number(m[1]);
  if (t.tag === 0x17) year += year < 50 ? 2000 : 1900;
  return Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

export function parseCertificate(der: Uint8Array): Certificate {
  const [tbsT, algT, sigT] = children(readTlv(der, 0));
  if (!tbsT || !algT || !sigT || sigT.tag !== 0x03) return fail("certificate");
  const tbs = children(tbsT);
  const i = tbs[0]?.tag === 0xa0 ? 2 : 1; // [0] version, then the serial number
  const [, issuer, validity, subject, spkiT] = tbs.slice(i, i + 5);
  if (!issuer || !validity || !subject || !spkiT) return fail("certificate");
  const [notBefore, notAfter] = children(validity);
  const [keyAlg, keyBits] = children(spkiT);
  const curve = CURVES[hexOf(children(keyAlg ?? fail("key"))[1]?.body ?? fail("key"))];
  const hash = HASHES[hexOf(children(algT)[0]?.body ?? fail("algorithm"))];
  if (!curve || !hash || !keyBits || !notBefore || !notAfter) return fail("certificate key or algorithm");
  const extensions = new Map<string, Uint8Array>();
  const extT = tbs.slice(i + 5).find((t) => t.tag === 0xa3);
  for (const ext of extT ? children(children(extT)[0] ?? fail("extensions")) : []) {
    const parts = children(ext);
    const value = parts[parts.length - 1];
    if (parts[0]?.tag === 0x06 && value?.tag === 0x04) extensions.set(hexOf(parts[0].body), value.body);
  }
  return {
    tbs: tbsT.all,
    hash,
    signature: sigT.body.subarray(1),
    issuer: hexOf(issuer.all),
    subject: hexOf(subject.all),
    notBefore: derTime(notBefore),
    notAfter: derTime(notAfter),
    spki: spkiT.all,
    curve,
    point: keyBits.body.subarray(1),
    extensions,
  };
}

/** The contents of the first context-specific [n] element inside a DER SEQUENCE, unwrapped once more. */
export function taggedOctets(der: Uint8Array, n: number): Uint8Array {
  const tagged = children(readTlv(der, 0)).find((t) => t.tag === (0xa0 | n)) ?? fail("extension");
  return (children(tagged)[0] ?? fail("extension")).body;
}

/** An ECDSA signature from DER (SEQUENCE of r and s) to the fixed-size r‖s WebCrypto verifies. */
export function ecdsaRaw(der: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size * 2);
  children(readTlv(der, 0)).forEach((int, k) => {
    let v = int.body;
    while (v.length > size && v[0] === 0) v = v.subarray(1);
    if (int.tag !== 0x02 || v.length > size || k > 1) fail("signature");
    out.set(v, size * (k + 1) - v.length);
  });
  return out;
}

/** DER bytes of the first certificate in a PEM text. */
export function pemToDer(pem: string): Uint8Array {
  const b64 = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem)?.[1] ?? fail("PEM");
  return Uint8Array.from(atob(b64.replace(/\s+/g, "")), (ch) => ch.charCodeAt(0));
}

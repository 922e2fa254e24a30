/**
 * X.509 as App Attest needs it, parsed just far enough on the DER reader of src/lib/der.ts: the signed
 * part, signature, key, validity and extensions. CBOR and ECDSA signatures come from src/lib (shared with
 * passkeys). Malformed input throws.
 */

import { children, readTlv, type Tlv } from "../../lib/der";

const fail = (what: string): never => {
  throw new Error(`malformed ${what}`);
};

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

/** DER bytes of the first certificate in a PEM text. */
export function pemToDer(pem: string): Uint8Array {
  const b64 = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem)?.[1] ?? fail("PEM");
  return Uint8Array.from(atob(b64.replace(/\s+/g, "")), (ch) => ch.charCodeAt(0));
}

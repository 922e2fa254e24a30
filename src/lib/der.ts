/**
 * DER, just far enough: elements and their children (App Attest's certificates read them), and an
 * ECDSA signature (SEQUENCE of r and s) to the fixed-size r‖s WebCrypto verifies (passkeys, App Attest).
 */

const fail = (what: string): never => {
  throw new Error(`malformed ${what}`);
};

/** One DER element: its tag, its contents and its whole encoding. */
export interface Tlv {
  tag: number;
  body: Uint8Array;
  all: Uint8Array;
  end: number;
}

export function readTlv(buf: Uint8Array, at: number): Tlv {
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

export function children(t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = 0; p < t.body.length; p = out[out.length - 1]!.end) out.push(readTlv(t.body, p));
  return out;
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

/**
 * A small CBOR decoder (RFC 8949) for the binary objects authenticators send: WebAuthn attestation objects
 * and COSE keys, App Attest attestations. Definite lengths only, no tags or floats; malformed input throws.
 * Integers, booleans/null, 32-bit lengths, and a prefix decode (a COSE key is followed by extensions
 * in authData).
 */

const fail = (what: string): never => {
  throw new Error(`malformed ${what}`);
};

/** Decodes the CBOR item at the start of `data`; returns it and the offset just past it. */
export function decodeCborPrefix(data: Uint8Array): { value: unknown; end: number } {
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
    if (info === 26) return view.getUint32(take(4));
    return fail("CBOR");
  };
  const item = (depth: number): unknown => {
    if (depth > 8) fail("CBOR");
    const head = data[take(1)]!;
    const major = head >> 5;
    if (major === 7) {
      const simple: Record<number, unknown> = { 20: false, 21: true, 22: null };
      return (head & 31) in simple ? simple[head & 31] : fail("CBOR");
    }
    const n = length(head & 31);
    if (major === 0) return n;
    if (major === 1) return -1 - n;
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
  return { value, end: pos };
}

/** Decodes one CBOR item that must fill `data` exactly. */
export function decodeCbor(data: Uint8Array): unknown {
  const { value, end } = decodeCborPrefix(data);
  if (end !== data.length) fail("CBOR");
  return value;
}

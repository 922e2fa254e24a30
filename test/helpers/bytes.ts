/** Byte helpers of the test kits (image fixtures, App Attest and Play tokens, the passkey authenticator). */

/** The parts one after the other, in a new array. */
export const concatBytes = (...parts: Uint8Array[]): Uint8Array<ArrayBuffer> => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

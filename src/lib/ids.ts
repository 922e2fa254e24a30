/** Time-sortable, URL-safe identifiers (UUIDv7, RFC 9562). */
import { hex } from "./crypto";

/** A new UUIDv7: 48-bit millisecond timestamp, then random bits; lexical order = creation order. */
export function newId(now = Date.now()): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  b[0] = (now / 2 ** 40) & 0xff;
  b[1] = (now / 2 ** 32) & 0xff;
  b[2] = (now >>> 24) & 0xff;
  b[3] = (now >>> 16) & 0xff;
  b[4] = (now >>> 8) & 0xff;
  b[5] = now & 0xff;
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = hex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Current time as ISO 8601 UTC with milliseconds. */
export const nowIso = (now = Date.now()): string => new Date(now).toISOString();

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True for a well-formed lowercase UUID (what `newId` produces). */
export const isId = (s: string): boolean => UUID_RE.test(s);

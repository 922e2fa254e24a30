/** Time-sortable, URL-safe identifiers (UUIDv7, RFC 9562). */

/**
 * A new UUIDv7: 48-bit millisecond timestamp, then random bits; lexical order = creation order.
 * Made from the runtime's native `randomUUID()` (a v4: its variant bits are v7's too): the first 12
 * hex digits become the timestamp and the version digit a 7, which leaves 74 random bits (RFC 9562
 * asks for at least 74 in rand_a and rand_b together). One native call instead of filling and
 * hex-encoding 16 bytes in script.
 */
export function newId(now = Date.now()): string {
  const u = crypto.randomUUID();
  const t = now.toString(16).padStart(12, "0");
  return `${t.slice(0, 8)}-${t.slice(8)}-7${u.slice(15)}`;
}

/** Current time as ISO 8601 UTC with milliseconds. */
export const nowIso = (now = Date.now()): string => new Date(now).toISOString();

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True for a well-formed lowercase UUID (what `newId` produces). */
export const isId = (s: string): boolean => UUID_RE.test(s);

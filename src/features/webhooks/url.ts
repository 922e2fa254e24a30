/**
 * Which URLs a webhook may call: `https:` in production, never credentials, never a literal address
 * that is not public (private, loopback, link-local, unspecified, multicast, reserved). Checked when a
 * webhook is created and again before every delivery. Names are not resolved here: see docs/logic.md.
 */

/** Environments where the test stand-ins on loopback may be called (over `http:` too). */
const LOCAL_ENVIRONMENTS: readonly string[] = ["development", "test"];

/** Why `a.b.c.d` is not public, or null when it is. */
function ipv4Problem(a: number, b: number, c: number): string | null {
  if (a === 0) return "an unspecified (0.0.0.0/8) address";
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return "a private address";
  if (a === 100 && b >= 64 && b <= 127) return "a shared (carrier-grade NAT) address";
  if (a === 127) return "a loopback address";
  if (a === 169 && b === 254) return "a link-local address";
  if (a === 192 && b === 0 && (c === 0 || c === 2)) return "a reserved address";
  if (
    (a === 198 && (b === 18 || b === 19)) ||
    (a === 198 && b === 51 && c === 100) ||
    (a === 203 && b === 0 && c === 113)
  )
    return "a reserved address";
  if (a >= 224) return "a multicast or reserved address";
  return null;
}

/** The 8 groups of an IPv6 literal as the URL parser writes it (compressed, lowercase), or null. */
function ipv6Groups(host: string): number[] | null {
  let text = host;
  // A dotted IPv4 tail (the URL parser rewrites it to hex, but be safe).
  const dotted = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [p, q, r, s] = dotted.slice(2).map(Number) as [number, number, number, number];
    text = `${dotted[1]}${((p << 8) | q).toString(16)}:${((r << 8) | s).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((g) => Number.parseInt(g, 16)));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return null;
  const groups = [...head, ...Array<number>(missing).fill(0), ...tail];
  return groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : null;
}

/** Why an IPv6 literal is not public, or null when it is. */
function ipv6Problem(groups: number[]): string | null {
  const [g0, g1, g2, g3, g4, g5, g6, g7] = groups as [number, number, number, number, number, number, number, number];
  const zeroPrefix = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0;
  const embedded = () => ipv4Problem(g6 >> 8, g6 & 0xff, g7 >> 8);
  if (zeroPrefix && g5 === 0 && g6 === 0 && g7 === 0) return "the unspecified address (::)";
  if (zeroPrefix && g5 === 0 && g6 === 0 && g7 === 1) return "a loopback address";
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d): judged by the IPv4 address inside.
  if (zeroPrefix && (g5 === 0xffff || g5 === 0)) {
    const p = embedded();
    return p ? `${p} (IPv4 inside IPv6)` : null;
  }
  // NAT64 (64:ff9b::a.b.c.d) reaches the IPv4 address inside.
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) {
    const p = embedded();
    return p ? `${p} (IPv4 inside IPv6)` : null;
  }
  if ((g0 & 0xfe00) === 0xfc00) return "a private (unique local) address";
  if ((g0 & 0xffc0) === 0xfe80) return "a link-local address";
  if ((g0 & 0xffc0) === 0xfec0) return "a site-local address";
  if ((g0 & 0xff00) === 0xff00) return "a multicast address";
  if (g0 === 0x2001 && g1 === 0xdb8) return "a documentation address";
  if (g0 === 0x100 && g1 === 0 && g2 === 0 && g3 === 0) return "a discard-only address";
  return null;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/**
 * Why `raw` may not be a webhook's URL in `environment`, or null when it may. The URL parser has
 * already turned other spellings of an address (`2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`) into
 * the canonical one, so only that is judged.
 */
export function webhookUrlProblem(raw: string, environment: string): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "must be an absolute URL";
  }
  const local = LOCAL_ENVIRONMENTS.includes(environment);
  if (url.protocol !== "https:" && !(local && url.protocol === "http:")) return "must be an https: URL";
  if (url.username || url.password) return "must not carry a user name or password";
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  if (host === "") return "must name a host";
  // Loopback is where the test stand-ins listen: allowed in development and test only.
  const loopbackAllowed = local && (host === "localhost" || host === "127.0.0.1");
  if (loopbackAllowed) return null;
  if (host === "localhost" || host.endsWith(".localhost")) return "must not point at localhost";
  const v4 = IPV4.exec(host);
  if (v4) {
    const [a, b, c] = v4.slice(1).map(Number) as [number, number, number];
    const p = ipv4Problem(a, b, c);
    return p ? `must not point at ${p}` : null;
  }
  if (host.startsWith("[")) {
    const groups = ipv6Groups(host.slice(1, -1));
    if (!groups) return "must be a valid IPv6 address";
    const p = ipv6Problem(groups);
    return p ? `must not point at ${p}` : null;
  }
  return null;
}

/** Semantic versions of app builds: parsing `Outpost-Client` and comparing versions (semver 2.0 precedence). */

export interface Version {
  core: [number, number, number];
  /** Pre-release identifiers (`beta.2` → ["beta", 2]); empty for a release. */
  pre: (string | number)[];
}

const VERSION_RE =
  /^(\d{1,9})(?:\.(\d{1,9}))?(?:\.(\d{1,9}))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$/;

/** `2.3.1`, `2.3` (= 2.3.0), `2` and pre-releases (`1.0.0-beta.2`); build metadata is ignored. Null when malformed. */
export function parseVersion(text: string): Version | null {
  const m = VERSION_RE.exec(text);
  if (!m) return null;
  const pre = m[4] ? m[4].split(".").map((id) => (/^\d+$/.test(id) ? Number(id) : id)) : [];
  return { core: [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)], pre };
}

/** Negative when a < b, 0 when equal, positive when a > b (a release is above its pre-releases). */
export function compareVersions(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a.core[i] !== b.core[i]) return a.core[i]! - b.core[i]!;
  if (!a.pre.length || !b.pre.length) return b.pre.length - a.pre.length;
  for (let i = 0; i < Math.min(a.pre.length, b.pre.length); i++) {
    const [x, y] = [a.pre[i]!, b.pre[i]!];
    if (x === y) continue;
    // Numeric identifiers sort below alphanumeric ones.
    if (typeof x === "number" && typeof y === "number") return x - y;
    if (typeof x === "number") return -1;
    if (typeof y === "number") return 1;
    return x < y ? -1 : 1;
  }
  return a.pre.length - b.pre.length;
}

/** The caller's app as `Outpost-Client: <platform>/<app version>` says (version null when malformed). */
export interface ClientApp {
  platform: string;
  version: Version | null;
}

/** Parses `ios/2.3.1`; null when the header is absent or not `<platform>/<version>`. */
export function parseClient(header: string | null | undefined): ClientApp | null {
  if (!header) return null;
  const m = /^([A-Za-z][A-Za-z0-9-]{0,15})\/(\S{1,64})$/.exec(header.trim());
  if (!m) return null;
  return { platform: m[1]!.toLowerCase(), version: parseVersion(m[2]!) };
}

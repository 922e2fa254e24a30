/**
 * Remote config rules: which value a caller gets. A key's rules are tried in order; the first whose `when`
 * all holds gives the value, else the key's value. Percentages are stable per user (or install) and key.
 */
import * as v from "valibot";
import type { ConfigValue } from "./define";
import { type ClientApp, compareVersions, parseVersion, type Version } from "./semver";

export const VersionText = v.pipe(
  v.string(),
  v.maxLength(64),
  v.check((s) => parseVersion(s) !== null, "not a version"),
);
const Country = v.pipe(v.string(), v.regex(/^[A-Z]{2}$/, "not a country code (DE)"));

/** A rule's conditions: each one given must hold. */
export const When = v.strictObject({
  platform: v.optional(v.pipe(v.string(), v.regex(/^[a-z][a-z0-9-]{0,15}$/, "not a platform (ios)"))),
  minAppVersion: v.optional(VersionText),
  maxAppVersion: v.optional(VersionText),
  country: v.optional(v.union([Country, v.pipe(v.array(Country), v.minLength(1), v.maxLength(50))])),
  signedIn: v.optional(v.boolean()),
  role: v.optional(v.picklist(["user", "admin"])),
  teamId: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(64))),
  percent: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(100))),
});
export type When = v.InferOutput<typeof When>;

export interface Rule {
  when: When;
  value: ConfigValue;
}

/** Who is asking, as far as rules can tell. `role` and `teamIds` are only looked up when a rule needs them. */
export interface Caller {
  client: ClientApp | null;
  country: string | null;
  userId: string | null;
  installId: string | null;
  role?: "user" | "admin" | null;
  teamIds?: readonly string[];
}

/** Whether any rule tests the account's role or team (then the caller's are looked up, one D1 round trip). */
export const needsAccount = (rules: readonly Rule[]): boolean =>
  rules.some((r) => r.when.role !== undefined || r.when.teamId !== undefined);

/** FNV-1a of a string (32 bits, unsigned). */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** 0 ≤ bucket < 100, in steps of 0.01: where `id` falls for `key` (FNV-1a, then murmur3's finalizer). */
export function rolloutBucket(key: string, id: string): number {
  let h = fnv1a(`${key}\u0000${id}`);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return ((h >>> 0) % 10_000) / 100;
}

const versionAtLeast = (have: Version | null, min: string) =>
  have !== null && compareVersions(have, parseVersion(min)!) >= 0;
const versionAtMost = (have: Version | null, max: string) =>
  have !== null && compareVersions(have, parseVersion(max)!) <= 0;

/** Whether every condition of `when` holds for the caller (for key `key`: the rollout's salt). */
export function matches(key: string, when: When, caller: Caller): boolean {
  if (when.platform !== undefined && caller.client?.platform !== when.platform) return false;
  if (when.minAppVersion !== undefined && !versionAtLeast(caller.client?.version ?? null, when.minAppVersion))
    return false;
  if (when.maxAppVersion !== undefined && !versionAtMost(caller.client?.version ?? null, when.maxAppVersion))
    return false;
  if (when.country !== undefined) {
    const wanted = typeof when.country === "string" ? [when.country] : when.country;
    if (caller.country === null || !wanted.includes(caller.country)) return false;
  }
  if (when.signedIn !== undefined && (caller.userId !== null) !== when.signedIn) return false;
  if (when.role !== undefined && (caller.role ?? null) !== when.role) return false;
  if (when.teamId !== undefined && !(caller.teamIds ?? []).includes(when.teamId)) return false;
  if (when.percent !== undefined && when.percent < 100) {
    const id = caller.userId ?? caller.installId;
    if (id === null || rolloutBucket(key, id) >= when.percent) return false;
  }
  return true;
}

/** The value `rules` give the caller: the first matching rule's, else `fallback`. */
export function resolve(key: string, fallback: ConfigValue, rules: readonly Rule[], caller: Caller): ConfigValue {
  for (const rule of rules) if (matches(key, rule.when, caller)) return rule.value;
  return fallback;
}

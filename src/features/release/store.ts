/**
 * Remote config in D1 and its per-isolate copy. An isolate re-reads the config (one round trip, on the primary)
 * when its copy is older than `limits.configRecheckSec`, and at once after a change it made itself; other
 * isolates see a change within that time (docs/release.md, "How a change travels").
 */
import { eq, sql } from "drizzle-orm";
import { limits } from "../../config";
import type { Database } from "../../db";
import { configState, configValues } from "../../db/schema";
import { AppError } from "../../errors";
import { nowIso } from "../../lib/ids";
import { appConfigDefaults } from "../../registry";
import { type ConfigValue, RESERVED_KEYS } from "./define";
import { needsAccount, type Rule } from "./rules";
import { parseVersion } from "./semver";

/** Every key with its code default: the reserved keys (null unless the app gives one), then the app's. */
export const codeDefaults: Readonly<Record<string, ConfigValue>> = {
  ...Object.fromEntries(RESERVED_KEYS.map((k) => [k, null])),
  ...appConfigDefaults,
};

/** What an admin set for a key. */
interface StoredKey {
  value: ConfigValue;
  rules: Rule[];
  updatedAt: string;
}

/** The config at one version: what admins set, by key. */
export interface Snapshot {
  version: number;
  stored: ReadonlyMap<string, StoredKey>;
  /** Whether some rule tests the account's role or team (the caller's are then looked up). */
  needsAccount: boolean;
}

let copy: { snapshot: Snapshot; readAt: number } | null = null;
let reading: Promise<Snapshot> | null = null;

async function read(db: Database): Promise<Snapshot> {
  const [state, rows] = await db.batch([
    db.select({ version: configState.version }).from(configState).where(eq(configState.id, 1)),
    db.select().from(configValues),
  ]);
  const stored = new Map<string, StoredKey>();
  for (const row of rows)
    stored.set(row.key, {
      value: JSON.parse(row.value) as ConfigValue,
      rules: JSON.parse(row.rules) as Rule[],
      updatedAt: row.updatedAt,
    });
  return {
    version: state[0]?.version ?? 0,
    stored,
    needsAccount: [...stored.values()].some((k) => needsAccount(k.rules)),
  };
}

/** The config as this isolate knows it; read from D1 (`db`: the primary) only when the copy is stale. */
export function configSnapshot(db: Database, now = Date.now()): Promise<Snapshot> {
  if (copy && now - copy.readAt < limits.configRecheckSec * 1000) return Promise.resolve(copy.snapshot);
  reading ??= read(db)
    .then((snapshot) => {
      copy = { snapshot, readAt: Date.now() };
      return snapshot;
    })
    .finally(() => {
      reading = null;
    });
  return reading;
}

/** Forgets this isolate's copy: the next request reads the config again (after a change made here). */
export function forgetConfigCopy(): void {
  copy = null;
}

const kindOf = (x: ConfigValue) => (x === null ? "null" : Array.isArray(x) ? "array" : typeof x);

/** Refuses a value a key cannot take: another type than its code default, or a bad version or store URL. */
function checkValue(key: string, x: ConfigValue, where: string): void {
  const fail = (message: string) => {
    throw new AppError("validation_failed", `${where}: ${message}`, { errors: [{ path: where, message }] });
  };
  // Reserved keys: a string (DELETE takes one back to no minimum / no store).
  if (key.startsWith("minVersion.")) {
    if (typeof x !== "string" || !parseVersion(x)) fail("must be a version such as 2.3.1");
    return;
  }
  if (key.startsWith("storeUrl.")) {
    if (typeof x !== "string" || !/^https:\/\/\S{1,2000}$/.test(x)) fail("must be an https URL");
    return;
  }
  const def = codeDefaults[key]!;
  if (def !== null && kindOf(x) !== kindOf(def)) fail(`must be a ${kindOf(def)}, as the code default is`);
}

/** The key's code default; throws `not_found` for a key the app does not declare. */
function declaredKey(key: string): ConfigValue {
  if (!Object.hasOwn(codeDefaults, key))
    throw new AppError("not_found", "No such config key (declare it in src/app/config.ts).");
  return codeDefaults[key]!;
}

/** The statements that set a key (after checking its values) and bump the version: batch them with the audit. */
export function setKeyStatements(db: Database, key: string, value: ConfigValue, rules: Rule[], now = nowIso()) {
  declaredKey(key);
  checkValue(key, value, "body.value");
  for (const [i, r] of rules.entries()) checkValue(key, r.value, `body.rules.${i}.value`);
  const row = { key, value: JSON.stringify(value), rules: JSON.stringify(rules), updatedAt: now };
  return [
    db.insert(configValues).values(row).onConflictDoUpdate({ target: configValues.key, set: row }),
    bumpVersion(db),
  ] as const;
}

/** The statements that take a key back to its code default and bump the version. */
export function clearKeyStatements(db: Database, key: string) {
  declaredKey(key);
  return [db.delete(configValues).where(eq(configValues.key, key)), bumpVersion(db)] as const;
}

const bumpVersion = (db: Database) =>
  db
    .insert(configState)
    .values({ id: 1, version: 1 })
    .onConflictDoUpdate({ target: configState.id, set: { version: sql`${configState.version} + 1` } });

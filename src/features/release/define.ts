/** What `src/app/config.ts` declares: the remote config keys and their code defaults (typed). */

/** A config value: any JSON. */
export type ConfigValue = string | number | boolean | null | ConfigValue[] | { [key: string]: ConfigValue };

/** Outpost's own keys (forced updates); an app may give them code defaults too. */
export const RESERVED_KEYS = ["minVersion.ios", "minVersion.android", "storeUrl.ios", "storeUrl.android"] as const;

/** A key: letters, digits, `.`, `_` and `-`, starting with a letter (`feed.pageSize`). */
const KEY_RE = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;

/**
 * Declares the app's remote config keys with their code defaults: what `GET /v1/config` answers until an admin
 * sets a value, and the types the SDK's `config.get(key)` returns.
 */
export function defineConfig<const D extends Record<string, ConfigValue>>(defaults: D): D {
  for (const key of Object.keys(defaults)) if (!KEY_RE.test(key)) throw new Error(`config key ${key}: bad name`);
  return defaults;
}

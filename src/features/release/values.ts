/** The config a caller gets: who is asking (headers, country, account), the values the rules give, the ETag. */
import type { Context } from "hono";
import type { Database } from "../../db";
import type { AppEnv } from "../../env";
import { userRowQuery } from "../auth";
import { teamIdsOfQuery } from "../teams";
import type { ConfigValue } from "./define";
import { type Caller, fnv1a, resolve } from "./rules";
import { parseClient } from "./semver";
import { codeDefaults, type Snapshot } from "./store";

export const CLIENT_HEADER = "Outpost-Client";
export const INSTALL_HEADER = "Outpost-Install-Id";

const INSTALL_RE = /^[A-Za-z0-9._:-]{8,128}$/;

/** The caller as far as the request tells (no account lookup): app, country, user, install id. */
export function callerOf(
  c: Context<AppEnv>,
  client = c.req.header(CLIENT_HEADER),
  install = c.req.header(INSTALL_HEADER),
) {
  const p = c.get("principal");
  const country = (c.req.raw.cf as { country?: unknown } | undefined)?.country;
  return {
    client: parseClient(client),
    country: typeof country === "string" && /^[A-Z]{2}$/.test(country) ? country : null,
    userId: p?.kind === "user" ? p.userId : null,
    installId: install && INSTALL_RE.test(install) ? install : null,
  } satisfies Caller;
}

/** Adds the account's role and teams to a signed-in caller when some rule tests them (one D1 round trip). */
export async function withAccount(db: Database, snapshot: Snapshot, caller: Caller): Promise<Caller> {
  if (!snapshot.needsAccount || caller.userId === null) return caller;
  const [user, teams] = await db.batch([userRowQuery(db, caller.userId), teamIdsOfQuery(db, caller.userId)]);
  return { ...caller, role: user[0]?.role ?? null, teamIds: teams.map((t) => t.teamId) };
}

/** The value of one key for the caller: its rules over the admin's value, or the code default. */
export function valueFor(snapshot: Snapshot, key: string, caller: Caller): ConfigValue {
  const stored = snapshot.stored.get(key);
  return stored ? resolve(key, stored.value, stored.rules, caller) : (codeDefaults[key] ?? null);
}

/** Every declared key's value for the caller. */
export function valuesFor(snapshot: Snapshot, caller: Caller): Record<string, ConfigValue> {
  const values: Record<string, ConfigValue> = {};
  for (const key of Object.keys(codeDefaults)) values[key] = valueFor(snapshot, key, caller);
  return values;
}

/** A strong ETag over the version and the values (code defaults change with a deploy, not the version). */
export function configEtag(version: number, values: Record<string, ConfigValue>): string {
  const text = JSON.stringify(values);
  return `"c${version}-${fnv1a(text).toString(36)}-${text.length.toString(36)}"`;
}

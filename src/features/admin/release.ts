/**
 * The admin's side of release controls (`/v1/admin/config`, `/v1/admin/links`) and what the console's Config
 * page shares with it: every change in one batch with its audit row, then announced to the subscribe sockets.
 */
import { Hono } from "hono";
import type * as v from "valibot";
import type { Database } from "../../db";
import { primaryDb } from "../../db";
import type { AppEnv } from "../../env";
import { describe, validate } from "../../lib/validation";
import {
  AdminConfigKey,
  AdminConfigList,
  AdminLinkList,
  announceConfigChange,
  clearKeyStatements,
  codeDefaults,
  configSnapshot,
  forgetConfigCopy,
  KeyParam,
  LinksQuery,
  listLinks,
  PreviewQuery,
  PreviewResponse,
  PutConfigBody,
  parseVersion,
  type Rule,
  setKeyStatements,
  toLink,
  valuesFor,
  withAccount,
} from "../release";
import { actorOf, requireAdmin } from "./middleware";
import { type Actor, auditStatement } from "./service";

const TAG = "Admin";
const refused = { 403: { description: "forbidden: neither an admin nor the service key" } };

/** Every key: its code default, the admin's value and rules (if set), and the config's version. */
export async function configEntries(db: Database) {
  const snapshot = await configSnapshot(db);
  const items = Object.entries(codeDefaults).map(([key, def]) => {
    const stored = snapshot.stored.get(key);
    return {
      key,
      default: def,
      set: stored !== undefined,
      value: stored ? stored.value : def,
      rules: stored?.rules ?? [],
      updatedAt: stored?.updatedAt ?? null,
    };
  });
  return { items, version: snapshot.version };
}

type PutConfig = v.InferOutput<typeof PutConfigBody>;

/** Sets a key's value and rules (with its audit row, in one batch); the next request here sees it. */
export async function putConfig(env: Env, db: Database, actor: Actor, key: string, body: PutConfig) {
  const rules = body.rules as Rule[];
  const updatedAt = new Date().toISOString();
  const audit = auditStatement(db, actor, { action: "config.set", target: `config:${key}`, detail: { ...body } });
  await db.batch([...setKeyStatements(db, key, body.value, rules, updatedAt), audit]);
  forgetConfigCopy();
  return { result: { key, value: body.value, rules, updatedAt }, announce: announceConfigChange(env) };
}

/** Takes a key back to its code default (with its audit row). */
export async function clearConfig(env: Env, db: Database, actor: Actor, key: string) {
  const audit = auditStatement(db, actor, { action: "config.reset", target: `config:${key}` });
  await db.batch([...clearKeyStatements(db, key), audit]);
  forgetConfigCopy();
  return { announce: announceConfigChange(env) };
}

/** What a client with this platform, version, user and install would get ("preview as"). */
export async function previewConfig(db: Database, q: v.InferOutput<typeof PreviewQuery>) {
  const snapshot = await configSnapshot(db);
  const caller = await withAccount(db, snapshot, {
    client: q.platform ? { platform: q.platform, version: q.version ? parseVersion(q.version) : null } : null,
    country: q.country ?? null,
    userId: q.userId ?? null,
    installId: q.installId ?? null,
  });
  return { values: valuesFor(snapshot, caller), version: snapshot.version };
}

export const adminReleaseRoutes = new Hono<AppEnv>()
  .get(
    "/config",
    describe({
      tag: TAG,
      summary: "Config keys (admin)",
      auth: "service",
      responses: { 200: { description: "The keys and the config's version", schema: AdminConfigList }, ...refused },
    }),
    requireAdmin,
    async (c) => c.json(await configEntries(primaryDb(c.env.DB))),
  )
  .get(
    "/config/preview",
    describe({
      tag: TAG,
      summary: "The config a client would get, as a platform, version, user, install and country (admin)",
      auth: "service",
      responses: { 200: { description: "The values", schema: PreviewResponse }, ...refused },
    }),
    requireAdmin,
    validate("query", PreviewQuery),
    async (c) => c.json(await previewConfig(primaryDb(c.env.DB), c.req.valid("query"))),
  )
  .put(
    "/config/:key",
    describe({
      tag: TAG,
      summary: "Set a config key (admin)",
      auth: "service",
      responses: {
        200: { description: "The key", schema: AdminConfigKey },
        404: { description: "No such key declared in src/app/config.ts" },
        ...refused,
      },
    }),
    requireAdmin,
    validate("param", KeyParam),
    validate("json", PutConfigBody),
    async (c) => {
      const db = primaryDb(c.env.DB);
      const { result, announce } = await putConfig(
        c.env,
        db,
        actorOf(c),
        c.req.valid("param").key,
        c.req.valid("json"),
      );
      c.executionCtx.waitUntil(announce);
      return c.json(result);
    },
  )
  .delete(
    "/config/:key",
    describe({
      tag: TAG,
      summary: "Reset a config key to its code default (admin)",
      auth: "service",
      responses: { 204: { description: "Back to the code default" }, 404: { description: "No such key" }, ...refused },
    }),
    requireAdmin,
    validate("param", KeyParam),
    async (c) => {
      const { announce } = await clearConfig(c.env, primaryDb(c.env.DB), actorOf(c), c.req.valid("param").key);
      c.executionCtx.waitUntil(announce);
      return c.body(null, 204);
    },
  )
  .get(
    "/links",
    describe({
      tag: TAG,
      summary: "Short links with open counts (admin)",
      auth: "service",
      responses: { 200: { description: "A page of links", schema: AdminLinkList }, ...refused },
    }),
    requireAdmin,
    validate("query", LinksQuery),
    async (c) => {
      const q = c.req.valid("query");
      const { page, nextCursor } = await listLinks(c.get("db"), null, q.cursor, q.limit);
      const base = c.get("config").publicUrl ?? new URL(c.req.url).origin;
      return c.json({ items: page.map((r) => ({ ...toLink(r, base), ownerId: r.ownerId })), nextCursor });
    },
  );

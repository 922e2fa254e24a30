/** `/v1/admin/app-check`: debug tokens (made, listed, revoked; audited). The monitor counts are on the console. */
import { Hono } from "hono";
import { type Database, runBatch } from "../../db";
import type { AppEnv } from "../../env";
import { AppError } from "../../errors";
import { describe, IdParam, validate } from "../../lib/validation";
import {
  DebugTokenCreate,
  DebugTokenCreated,
  DebugTokenList,
  debugTokenExistsSql,
  listDebugTokens,
  newDebugToken,
  revokeDebugTokenStatement,
} from "../app-check";
import { actorOf, requireAdmin } from "./middleware";
import { type Actor, auditStatement } from "./service";

/** Makes a debug token (its audit row in the same batch); the secret is returned once. */
export async function createDebugToken(db: Database, actor: Actor, name: string) {
  const t = await newDebugToken(db, name, actor.id);
  await runBatch(db, [
    t.statement,
    auditStatement(db, actor, {
      action: "app_check.debug_token.create",
      target: `app_check_debug_token:${t.id}`,
      detail: { name },
    }),
  ]);
  return { id: t.id, name, debugToken: t.debugToken };
}

/** Revokes a debug token (its audit row in the same batch, written only if it existed); false when there was none. */
export async function revokeDebugToken(db: Database, actor: Actor, id: string): Promise<boolean> {
  const audit = { action: "app_check.debug_token.revoke", target: `app_check_debug_token:${id}` };
  const [, gone] = (await runBatch(db, [
    auditStatement(db, actor, audit, debugTokenExistsSql(id)),
    revokeDebugTokenStatement(db, id),
  ])) as [unknown, unknown[]];
  return gone.length === 1;
}

const TAG = "Admin";
const refused = { 403: { description: "forbidden: neither an admin nor the service key" } };

export const appCheckAdminRoutes = new Hono<AppEnv>()
  .post(
    "/debug-tokens",
    describe({
      tag: TAG,
      summary: "Make an App Check debug token (admin); its secret is shown once",
      auth: "service",
      responses: { 201: { description: "The token and its secret", schema: DebugTokenCreated }, ...refused },
    }),
    requireAdmin,
    validate("json", DebugTokenCreate),
    async (c) => c.json(await createDebugToken(c.get("db"), actorOf(c), c.req.valid("json").name), 201),
  )
  .get(
    "/debug-tokens",
    describe({
      tag: TAG,
      summary: "App Check debug tokens, newest first (admin)",
      auth: "service",
      responses: { 200: { description: "Debug tokens", schema: DebugTokenList }, ...refused },
    }),
    requireAdmin,
    async (c) => c.json({ items: await listDebugTokens(c.get("db")) }),
  )
  .delete(
    "/debug-tokens/:id",
    describe({
      tag: TAG,
      summary: "Revoke an App Check debug token (admin)",
      description: "Tokens it already gave stay valid until they expire (1 hour at most).",
      auth: "service",
      responses: { 204: { description: "Revoked" }, 404: { description: "No such debug token" }, ...refused },
    }),
    requireAdmin,
    validate("param", IdParam),
    async (c) => {
      if (!(await revokeDebugToken(c.get("db"), actorOf(c), c.req.valid("param").id)))
        throw new AppError("not_found", "No such debug token.");
      return c.body(null, 204);
    },
  );

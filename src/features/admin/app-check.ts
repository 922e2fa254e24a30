/** `/v1/admin/app-check`: debug tokens (made, listed, revoked; audited) and the guard's monitor counts. */
import { Hono } from "hono";
import { type Database, runBatch } from "../../db";
import type { AppEnv } from "../../env";
import { AppError } from "../../errors";
import { describe, IdParam, validate } from "../../lib/validation";
import {
  CountList,
  CountsQuery,
  DebugTokenCreate,
  DebugTokenCreated,
  DebugTokenList,
  findDebugToken,
  listDebugTokens,
  newDebugToken,
  readCounts,
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

/** Revokes a debug token; false when there is none with this id. */
export async function revokeDebugToken(db: Database, actor: Actor, id: string): Promise<boolean> {
  const t = await findDebugToken(db, id);
  if (!t) return false;
  await runBatch(db, [
    revokeDebugTokenStatement(db, id),
    auditStatement(db, actor, {
      action: "app_check.debug_token.revoke",
      target: `app_check_debug_token:${id}`,
      detail: { name: t.name },
    }),
  ]);
  return true;
}

const TAG = "Admin";
const refused = { 403: { description: "forbidden: neither an admin nor the service key" } };

export const appCheckAdminRoutes = new Hono<AppEnv>()
  .post(
    "/debug-tokens",
    describe({
      tag: TAG,
      summary: "Make an App Check debug token for simulators and CI (admin); the secret is shown once",
      auth: "service",
      responses: { 201: { description: "The token and its secret", schema: DebugTokenCreated }, ...refused },
    }),
    requireAdmin,
    validate("json", DebugTokenCreate),
    async (c) => c.json(await createDebugToken(c.var.db, actorOf(c), c.req.valid("json").name), 201),
  )
  .get(
    "/debug-tokens",
    describe({
      tag: TAG,
      summary: "App Check debug tokens, newest first, without their secrets (admin)",
      auth: "service",
      responses: { 200: { description: "Debug tokens", schema: DebugTokenList }, ...refused },
    }),
    requireAdmin,
    async (c) => c.json({ items: await listDebugTokens(c.var.db) }),
  )
  .delete(
    "/debug-tokens/:id",
    describe({
      tag: TAG,
      summary: "Revoke an App Check debug token (admin)",
      description: "It no longer exchanges; tokens it already gave stay valid until they expire (at most 1 hour).",
      auth: "service",
      responses: { 204: { description: "Revoked" }, 404: { description: "No such debug token" }, ...refused },
    }),
    requireAdmin,
    validate("param", IdParam),
    async (c) => {
      if (!(await revokeDebugToken(c.var.db, actorOf(c), c.req.valid("param").id)))
        throw new AppError("not_found", "No such debug token.");
      return c.body(null, 204);
    },
  )
  .get(
    "/counts",
    describe({
      tag: TAG,
      summary: "What the App Check guard saw per day, platform and reason (admin)",
      description:
        "Counted in monitor and enforce modes; written in coalesced flushes, so the last seconds of traffic may " +
        "not show yet. `reason`: ok, missing, invalid or expired.",
      auth: "service",
      responses: { 200: { description: "Counts, newest day first", schema: CountList }, ...refused },
    }),
    requireAdmin,
    validate("query", CountsQuery),
    async (c) => {
      const { mode, guard } = c.var.config.appCheck;
      return c.json({ mode, guard, items: await readCounts(c.var.db, c.req.valid("query").days) });
    },
  );

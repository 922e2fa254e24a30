/**
 * What the app's own routes (src/app/routes.ts, mounted at `/v1/app`) are written with: the same
 * validation, OpenAPI description, authentication, errors, idempotency and rate limits as Outpost's
 * routes, and the caller-aware reads and service writes they need. One module, so src/app imports one.
 */
import type { Context } from "hono";
import { limits } from "../../config";
import type { AppEnv } from "../../env";
import { rateLimitUser } from "../../middleware/rate-limit";
import { findCollection, getRecord } from "../collections";
import { roleQuery } from "../teams";
import { servicesFor } from "./before";
import type { AppServices } from "./types";

export type { AppEnv } from "../../env";
export { AppError } from "../../errors";
export { describe, EmptyBody, IdParam, validate } from "../../lib/validation";
export { idempotency } from "../../middleware/idempotency";
export { requireUser } from "../auth";
export { atLeast } from "../teams";

/** Middleware, after `requireUser`: each user calls route `group` at most 30 times a minute (429 past it). */
export const limitPerUser = (group: string) =>
  rateLimitUser("ROOMS_LIMITER", `app:${group}`, limits.appRoutesPeriodSec);

/** The app's services for this request: records read and written as the service key, through the write path. */
export const appOf = (c: Context<AppEnv>): AppServices =>
  servicesFor({ env: c.env, db: c.get("db"), waitUntil: (p) => c.executionCtx.waitUntil(p) });

/** A record read as the caller (their read rule): 404 `not_found` when it is missing or they may not read it. */
export async function readAsCaller(c: Context<AppEnv>, collection: string, id: string) {
  const col = findCollection(collection);
  if (!col) throw new Error(`readAsCaller: no collection "${collection}"`);
  return getRecord(c.get("db"), col, c.get("principal"), id);
}

/** The signed-in caller's role in `teamId`, or null when they are not a member. */
export async function teamRoleOf(c: Context<AppEnv>, teamId: string) {
  const p = c.get("principal");
  if (p?.kind !== "user") return null;
  return (await roleQuery(c.get("db"), teamId, p.userId).get())?.role ?? null;
}

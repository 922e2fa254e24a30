/**
 * Routes whose access decision must not rest on a lagging read replica (a member removed or a user
 * blocked a moment ago): the request's D1 session starts at the primary. No extra round trip.
 */
import { createMiddleware } from "hono/factory";
import { createDb } from "../db";
import type { AppEnv } from "../env";

/** Replaces the request's D1 session with one whose first query goes to the primary (its bookmark is returned). */
export const readPrimary = createMiddleware<AppEnv>(async (c, next) => {
  const d1 = c.env.DB.withSession("first-primary");
  c.set("d1", d1);
  c.set("db", createDb(d1));
  await next();
});

/**
 * `readPrimary` for a signed-in user only (after the auth middleware): their access may rest on a
 * team membership removed a moment ago. Anonymous and service-key reads stay on the nearest replica.
 */
export const readPrimaryForUsers = createMiddleware<AppEnv>(async (c, next) => {
  if (c.get("principal")?.kind !== "user") return next();
  return readPrimary(c, next);
});

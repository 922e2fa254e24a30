/**
 * Forced updates: a request whose `Outpost-Client` app is older than its platform's `minVersion.<platform>`
 * gets 426 `upgrade_required` with `storeUrl`. Read from the isolate's config copy: no D1 query per request.
 */
import { createMiddleware } from "hono/factory";
import { primaryDb } from "../../db";
import type { AppEnv } from "../../env";
import { AppError } from "../../errors";
import { compareVersions, parseVersion } from "./semver";
import { configSnapshot } from "./store";
import { CLIENT_HEADER, callerOf, valueFor } from "./values";

/** Never refused: the config (the client must learn it should update), health, docs, deep links, the console. */
const EXEMPT = /^\/(v1\/(config(\/|$)|health$|openapi\.json$)|docs|admin|\.well-known\/|l\/)/;

export const requireCurrentApp = createMiddleware<AppEnv>(async (c, next) => {
  if (c.req.header(CLIENT_HEADER) === undefined || EXEMPT.test(c.req.path)) return next();
  const caller = callerOf(c);
  // A malformed version cannot be compared: it is let through (a real build always sends its version).
  if (!caller.client?.version) return next();
  const snapshot = await configSnapshot(primaryDb(c.env.DB));
  const min = valueFor(snapshot, `minVersion.${caller.client.platform}`, caller);
  const minVersion = typeof min === "string" ? parseVersion(min) : null;
  if (minVersion && compareVersions(caller.client.version, minVersion) < 0) {
    const storeUrl = valueFor(snapshot, `storeUrl.${caller.client.platform}`, caller);
    throw new AppError("upgrade_required", `Update the app to ${min} or later.`, {
      members: { storeUrl: typeof storeUrl === "string" ? storeUrl : null, minVersion: min as string },
    });
  }
  return next();
});

/**
 * The guard (`APP_CHECK_MODE`, `APP_CHECK_GUARD`): reads `Outpost-App-Check` on the guarded routes,
 * counts what it saw (monitor and enforce) and, in enforce mode, refuses a missing or bad token with
 * 401 `app_check_failed`. No D1 query: the token is checked by its signature alone.
 */
import { createMiddleware } from "hono/factory";
import type { Config } from "../../config";
import type { AppEnv } from "../../env";
import { AppError } from "../../errors";
import { safeEqualStr } from "../../lib/crypto";
import { countRequest } from "./counts";
import { checkAppCheckToken } from "./token";

export const APP_CHECK_HEADER = "Outpost-App-Check";

/** The routes under /v1/auth/ that sign someone in or up (`APP_CHECK_GUARD=auth`). */
const SIGN_IN_ROUTES =
  /^\/v1\/auth\/(signup|login|anonymous|link|idtoken|otp\/verify|oauth\/exchange|mfa\/verify|passkeys\/login)\/?$/;

/** Under `all`: every /v1 route but these (the health check, the checks themselves, the API document). */
const OPEN_ROUTES = /^\/v1\/(health|app-check(\/.*)?|openapi\.json)\/?$/;

const SIGNED_CONTENT = /^\/v1\/files\/[^/]+\/content\/?$/;

/** OAuth's browser legs: redirects to and from the provider (the session comes from the guarded exchange). */
const OAUTH_REDIRECTS = /^\/v1\/auth\/oauth\/[^/]+\/(start|callback)\/?$/;

/**
 * Also open under `all`: WebSocket upgrades (they carry a ticket from the guarded POST
 * /v1/auth/socket-ticket; browsers cannot add headers to them) and signed file URLs (`sig`: made by
 * a guarded call, opened by image views and players that cannot add headers), and OAuth's start and
 * callback (browser redirects; the code they lead to is worth nothing without the guarded
 * POST /v1/auth/oauth/exchange).
 */
function guarded(
  guard: "auth" | "all",
  req: { method: string; path: string; header(n: string): string | undefined; query(n: string): string | undefined },
): boolean {
  const { method, path } = req;
  if (method === "OPTIONS") return false;
  if (guard === "auth") return method === "POST" && SIGN_IN_ROUTES.test(path);
  if (req.header("upgrade")?.toLowerCase() === "websocket") return false;
  if (method === "GET" && SIGNED_CONTENT.test(path) && req.query("sig") !== undefined) return false;
  if (OAUTH_REDIRECTS.test(path)) return false;
  return path.startsWith("/v1/") && !OPEN_ROUTES.test(path);
}

/** Server-to-server calls with the service key are no app: never guarded. */
const isServiceKey = (auth: string | undefined, cfg: Config) =>
  auth !== undefined && safeEqualStr(auth, `Bearer ${cfg.serviceKey}`);

/** Middleware for the root app, after CORS (a preflight never carries the header). */
export const appCheckGuard = createMiddleware<AppEnv>(async (c, next) => {
  const { mode, guard } = c.get("config").appCheck;
  if (mode === "off" || !guarded(guard, c.req) || isServiceKey(c.req.header("authorization"), c.get("config")))
    return next();
  const verdict = await checkAppCheckToken(c.get("config"), c.req.header(APP_CHECK_HEADER));
  const flush = countRequest(verdict.platform, verdict.reason, c.env.DB);
  if (flush) c.executionCtx.waitUntil(flush());
  if (!verdict.ok && mode === "enforce") {
    throw new AppError(
      "app_check_failed",
      `${APP_CHECK_HEADER}: ${verdict.reason === "invalid" ? "not valid" : verdict.reason}.`,
    );
  }
  return next();
});

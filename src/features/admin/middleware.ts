/**
 * Admin authorization: the service key, or the access token of an admin whose account is enabled
 * and whose session is still live. Unlike ordinary routes (tokens checked without D1), the user
 * is looked up here (one query, on the primary), so demoting, disabling or signing out takes
 * effect on the admin API at once. An admin with a second factor (any admin, with CONSOLE_REQUIRE_MFA) needs
 * an aal2 token.
 */
import { every } from "hono/combine";
import { createMiddleware } from "hono/factory";
import { primaryDb } from "../../db";
import type { AppEnv, Vars } from "../../env";
import { AppError } from "../../errors";
import { adminStanding, requireAuth } from "../auth";
import { type Actor, SERVICE_ACTOR } from "./service";

const adminStandingCheck = createMiddleware<AppEnv>(async (c, next) => {
  const p = c.get("principal");
  if (!p) throw new AppError("unauthorized", "Send Authorization: Bearer <admin access token or service key>.");
  if (p.kind === "user") {
    const standing = await adminStanding(primaryDb(c.env.DB), p.userId, p.sessionId);
    if (!standing) throw new AppError("unauthorized", "This account no longer exists.");
    if (standing.disabled) throw new AppError("account_disabled", "This account has been disabled.");
    if (!standing.live) throw new AppError("unauthorized", "This session has ended; sign in again.");
    if (standing.role !== "admin") throw new AppError("forbidden", "This route is for admins and the service key.");
    // An admin with a second factor (or any admin, with CONSOLE_REQUIRE_MFA) acts only from a sign-in
    // that proved it: an aal1 session (e.g. the one that enrolled the factor) is refused.
    if ((standing.factor || c.get("config").consoleRequireMfa) && p.aal !== "aal2") {
      throw new AppError(
        "mfa_required",
        "Admins need a second factor here: set one up, then sign in with it (POST /v1/auth/mfa/verify).",
      );
    }
  }
  await next();
});

/** The service key, or an admin's token (the token check, then one query for the admin's standing). */
export const requireAdmin = every(requireAuth, adminStandingCheck);

/** The acting admin of a request behind `requireAdmin`, for the audit log. */
export function actorOf(c: Vars): Actor {
  const p = c.get("principal");
  if (!p) throw new AppError("unauthorized");
  return {
    id: p.kind === "service" ? SERVICE_ACTOR : p.userId,
    requestId: c.get("requestId"),
    clientRequestId: c.get("clientRequestId"),
  };
}

/**
 * Authentication: `Authorization: Bearer <token>` is either the service key (admin, server to
 * server) or an access JWT, verified without touching the database. WebSocket routes also take a
 * single-use `?ticket=` (one query to redeem it) or, for compatibility, `?token=`.
 */
import { createMiddleware } from "hono/factory";
import { uniqueSymbol } from "hono-openapi";
import type { AppEnv, Principal } from "../env";
import { AppError } from "../errors";
import { safeEqualStr } from "../lib/crypto";
import { consumeSocketTicket } from "../features/auth/service";
import { verifyAccessToken } from "../features/auth/tokens";

/** Extracts the bearer token from a header value, or null. */
export function bearer(header: string | undefined | null): string | null {
  if (!header) return null;
  const m = /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(header);
  return m?.[1] ?? null;
}

/** Resolves a token to a principal; throws `unauthorized` / `token_expired` when it is bad. */
export async function principalFromToken(c: { var: AppEnv["Variables"] }, token: string): Promise<Principal> {
  const { config } = c.var;
  if (safeEqualStr(token, config.serviceKey)) return { kind: "service" };
  return verifyAccessToken(config, token);
}

/**
 * Sets `c.var.principal` when a token is present (and rejects a bad one); callers that send no
 * Authorization header pass as anonymous. A header that is not a bearer token is refused, not
 * ignored: a client that sent credentials must not silently get the anonymous view.
 */
export const optionalAuth = createMiddleware<AppEnv>(async (c, next) => {
  const header = c.req.header("authorization");
  const token = bearer(header);
  if (header !== undefined && !token) throw new AppError("unauthorized", "Send Authorization: Bearer <accessToken>, or no Authorization header.");
  c.set("principal", token ? await principalFromToken(c, token) : null);
  await next();
});

/** Requires a user token or the service key. */
export const requireAuth = createMiddleware<AppEnv>(async (c, next) => {
  const token = bearer(c.req.header("authorization"));
  if (!token) throw new AppError("unauthorized", "Send Authorization: Bearer <accessToken>.");
  c.set("principal", await principalFromToken(c, token));
  await next();
});

/** Requires a user token (the service key is refused: the route acts on the caller's own account). */
export const requireUser = createMiddleware<AppEnv>(async (c, next) => {
  const token = bearer(c.req.header("authorization"));
  if (!token) throw new AppError("unauthorized", "Send Authorization: Bearer <accessToken>.");
  const p = await principalFromToken(c, token);
  if (p.kind !== "user") throw new AppError("forbidden", "This route needs a user's access token, not the service key.");
  c.set("principal", p);
  await next();
});

/** What `POST /v1/auth/socket-ticket` hands out: `st_` + 256 random bits, base64url. */
const TICKET_RE = /^st_[A-Za-z0-9_-]{43}$/;

/**
 * For WebSocket routes (clients often cannot set headers on an upgrade): a user, from the
 * `Authorization` header, a single-use `?ticket=` (recommended: the access token stays out of
 * URLs and logs), or `?token=<accessToken>` (kept for compatibility). The first one present is
 * used. A ticket's caller is the session that asked for it (same userId and sessionId).
 */
export const requireSocketUser = Object.assign(
  createMiddleware<AppEnv>(async (c, next) => {
    const header = bearer(c.req.header("authorization"));
    const ticket = header ? undefined : c.req.query("ticket");
    const token = header ?? (ticket === undefined ? c.req.query("token") : undefined);
    let p: Principal;
    if (token) {
      p = await principalFromToken(c, token);
    } else if (ticket !== undefined) {
      const redeemed = TICKET_RE.test(ticket) ? await consumeSocketTicket(c.var.db, ticket) : null;
      if (!redeemed) throw new AppError("unauthorized", "The socket ticket is not valid, was already used, or has expired; get a new one from POST /v1/auth/socket-ticket.");
      p = redeemed;
    } else {
      throw new AppError("unauthorized", "Send ?ticket=<from POST /v1/auth/socket-ticket>, Authorization: Bearer <accessToken>, or ?token=<accessToken>.");
    }
    if (p.kind !== "user") throw new AppError("forbidden", "Sockets need a user's access token, not the service key.");
    c.set("principal", p);
    await next();
  }),
  // OpenAPI (hono-openapi merges this into every route that uses the middleware).
  {
    [uniqueSymbol]: {
      spec: {
        parameters: [
          {
            name: "ticket",
            in: "query",
            required: false,
            schema: { type: "string" },
            description:
              "Recommended: a single-use ticket from `POST /v1/auth/socket-ticket` (valid 30 seconds), instead of `?token=`, which puts the access token itself into URLs and server logs. `?token=<accessToken>` and the `Authorization` header keep working.",
          },
        ],
      },
    },
  },
);

/** Requires the service key. */
export const requireService = createMiddleware<AppEnv>(async (c, next) => {
  const token = bearer(c.req.header("authorization"));
  if (!token) throw new AppError("unauthorized", "Send Authorization: Bearer <serviceKey>.");
  const p = await principalFromToken(c, token);
  if (p.kind !== "service") throw new AppError("forbidden", "This route needs the service key.");
  c.set("principal", p);
  await next();
});

/** The calling user, for handlers behind `requireUser`. */
export function userOf(c: { var: AppEnv["Variables"] }): Extract<Principal, { kind: "user" }> {
  const p = c.var.principal;
  if (!p || p.kind !== "user") throw new AppError("unauthorized");
  return p;
}

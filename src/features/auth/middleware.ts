/**
 * Authentication: `Authorization: Bearer <token>` is either the service key (admin, server to
 * server) or an access JWT, verified without touching the database. WebSocket routes also take a
 * single-use `?ticket=` (one query to redeem it) or, for compatibility, `?token=`.
 */
import { createMiddleware } from "hono/factory";
import { uniqueSymbol } from "hono-openapi";
import { limits } from "../../config";
import type { AppEnv, Principal, Vars } from "../../env";
import { AppError } from "../../errors";
import { safeEqualStr } from "../../lib/crypto";
import { checkRate } from "../../middleware/rate-limit";
import { hasFactor } from "./mfa";
import { assertNotRevoked } from "./revocations";
import { consumeSocketTicket } from "./sessions";
import { verifyAccessTokenIssued } from "./tokens";

/** Extracts the bearer token from a header value, or null. */
function bearer(header: string | undefined | null): string | null {
  if (!header) return null;
  const m = /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(header);
  return m?.[1] ?? null;
}

/**
 * Resolves a token to a principal (and a user token's issue time); throws `unauthorized` /
 * `token_expired` when it is bad.
 */
async function principalFromToken(c: Vars, token: string): Promise<{ principal: Principal; iat?: number }> {
  const config = c.get("config");
  if (safeEqualStr(token, config.serviceKey)) return { principal: { kind: "service" } };
  return verifyAccessTokenIssued(config, token);
}

/** Who a route lets in once the token is verified. */
type Accept = "user" | "user-or-service";

interface AuthOptions {
  accept: Accept;
  /** Callers with no credentials pass as anonymous (`c.get("principal")` null). */
  optional?: boolean;
  /**
   * WebSocket routes (clients often cannot set headers on an upgrade): besides the header, a
   * single-use `?ticket=` (recommended: the access token stays out of URLs and logs) or
   * `?token=<accessToken>` (kept for compatibility); the first one present is used.
   */
  socket?: boolean;
}

/** What `POST /v1/auth/socket-ticket` hands out: `st_` + 256 random bits, base64url. */
const TICKET_RE = /^st_[A-Za-z0-9_-]{43}$/;

const MISSING = "Send Authorization: Bearer <accessToken>.";
const SOCKET_MISSING =
  "Send ?ticket=<from POST /v1/auth/socket-ticket>, Authorization: Bearer <accessToken>, or ?token=<accessToken>.";

/**
 * The one authentication middleware: finds the credential (header, or for sockets also a ticket
 * or `?token=`), verifies it, checks it is a kind the route accepts, and sets `c.get("principal")`.
 * A header that is not a bearer token is refused, never ignored: a client that sent credentials
 * must not silently get the anonymous view.
 */
function authenticate(opts: AuthOptions) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const header = c.req.header("authorization");
    const ticket = opts.socket && header === undefined ? c.req.query("ticket") : undefined;
    const token =
      bearer(header) ??
      (opts.socket && header === undefined && ticket === undefined ? c.req.query("token") : undefined);
    let p: Principal | null = null;
    let iat: number | undefined;
    if (header !== undefined && !token) {
      throw new AppError(
        "unauthorized",
        opts.optional ? "Send Authorization: Bearer <accessToken>, or no Authorization header." : MISSING,
      );
    }
    if (token) {
      ({ principal: p, iat } = await principalFromToken(c, token));
    } else if (ticket !== undefined) {
      p = TICKET_RE.test(ticket) ? await consumeSocketTicket(c.get("db"), ticket) : null;
      // A live ticket was made by a valid token at most its lifetime ago.
      iat = Math.floor(Date.now() / 1000) - limits.socketTicketTtlSec;
      if (!p)
        throw new AppError(
          "unauthorized",
          "The socket ticket is not valid, was already used, or has expired; get a new one from POST " +
            "/v1/auth/socket-ticket.",
        );
    } else if (!opts.optional) {
      throw new AppError("unauthorized", opts.socket ? SOCKET_MISSING : MISSING);
    }
    if (p && opts.accept === "user" && p.kind !== "user") {
      throw new AppError(
        "forbidden",
        opts.socket
          ? "Sockets need a user's access token, not the service key."
          : "This route needs a user's access token, not the service key.",
      );
    }
    if (p?.kind === "user") {
      await assertNotRevoked(c.get("db"), p.userId, iat ?? 0, (work) => c.executionCtx.waitUntil(work));
      // A socket opened with the token itself took no ticket: it spends from the same per-user
      // budget as a ticket, so reconnect storms are bounded whichever way a client authenticates.
      if (opts.socket && token) {
        await checkRate(c.env, "REFRESH_LIMITER", `socket-ticket:${p.userId}`, limits.socketTicketsPeriodSec);
      }
    }
    c.set("principal", p);
    await next();
  });
}

/** A token is optional; a bad one is still refused. */
export const optionalAuth = authenticate({ accept: "user-or-service", optional: true });
/** A user token or the service key. */
export const requireAuth = authenticate({ accept: "user-or-service" });
/** A user token (the service key is refused: the route acts on the caller's own account). */
export const requireUser = authenticate({ accept: "user" });

/** A user, for WebSocket routes: header, `?ticket=` or `?token=`; documented in OpenAPI with the ticket parameter. */
export const requireSocketUser = Object.assign(authenticate({ accept: "user", socket: true }), {
  // hono-openapi merges this into every route that uses the middleware.
  [uniqueSymbol]: {
    spec: {
      parameters: [
        {
          name: "ticket",
          in: "query",
          required: false,
          schema: { type: "string" },
          description:
            "Recommended: a single-use ticket from `POST /v1/auth/socket-ticket` (valid 30 seconds), instead of " +
            "`?token=`, which puts the access token itself into URLs and server logs. `?token=<accessToken>` and " +
            "the `Authorization` header keep working.",
        },
      ],
    },
  },
});

/**
 * After `requireUser`, on routes that change how the account is protected (password, second
 * factors, deletion): a user with a confirmed second factor needs an `aal2` session (401
 * `mfa_required`). An aal2 token passes on its claim alone; an aal1 one costs one query.
 */
export const requireAal2IfFactor = createMiddleware<AppEnv>(async (c, next) => {
  const p = c.get("principal");
  if (p?.kind === "user" && p.aal !== "aal2" && (await hasFactor(c.get("db"), p.userId))) {
    throw new AppError(
      "mfa_required",
      "This account has a second factor: sign in again with it (POST /v1/auth/mfa/verify) to do this.",
    );
  }
  await next();
});

/** The calling user, for handlers behind `requireUser`. */
export function userOf(c: Vars): Extract<Principal, { kind: "user" }> {
  const p = c.get("principal");
  if (p?.kind !== "user") throw new AppError("unauthorized");
  return p;
}

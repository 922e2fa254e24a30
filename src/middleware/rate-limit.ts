/**
 * Rate limits on Cloudflare's Rate Limiting bindings, keyed by client IP and route group.
 * Over the limit → 429 `rate_limited` with Retry-After (the binding's period).
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { AppError } from "../errors";

type LimiterName =
  | "AUTH_LIMITER"
  | "REFRESH_LIMITER"
  | "CHAT_LIMITER"
  | "LIST_LIMITER"
  | "ROOMS_LIMITER"
  | "OTP_LIMITER"
  | "LINKS_LIMITER";

/** The client's address as Cloudflare reports it ("local" in local development without it). */
export const clientIp = (req: { header(name: string): string | undefined }) =>
  req.header("cf-connecting-ip") ?? "local";

/** Throws `rate_limited` when `key` is over the limiter's budget. */
export async function checkRate(env: Env, limiter: LimiterName, key: string, retryAfterSec = 60): Promise<void> {
  const { success } = await env[limiter].limit({ key });
  if (!success) {
    throw new AppError("rate_limited", "Too many requests; slow down.", {
      headers: { "retry-after": String(retryAfterSec) },
    });
  }
}

/** Middleware: limit by client IP within `group` (e.g. "login"). */
export const rateLimit = (limiter: LimiterName, group: string) =>
  createMiddleware<AppEnv>(async (c, next) => {
    await checkRate(c.env, limiter, `${group}:${clientIp(c.req)}`);
    await next();
  });

/**
 * Middleware, after `optionalAuth`: limit callers WITHOUT a token by client IP within `group`
 * (signed-in callers and the service key pass uncounted). Retry-After is the binding's period.
 */
export const rateLimitAnonymous = (limiter: LimiterName, group: string, periodSec: number) =>
  createMiddleware<AppEnv>(async (c, next) => {
    if (!c.get("principal")) await checkRate(c.env, limiter, `${group}:${clientIp(c.req)}`, periodSec);
    await next();
  });

/**
 * Middleware, after `requireUser`: limit the signed-in user (not the address: one account from many
 * addresses shares it) within `group`. Retry-After is the binding's period.
 */
export const rateLimitUser = (limiter: LimiterName, group: string, periodSec: number) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const p = c.get("principal");
    if (p?.kind === "user") await checkRate(c.env, limiter, `${group}:${p.userId}`, periodSec);
    await next();
  });

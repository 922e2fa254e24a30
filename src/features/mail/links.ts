/** Where links in mails point: the app's deep-link base or this API's public URL, never a request's Host. */
import type { Config } from "../../config";
import { AppError } from "../../errors";

/**
 * `APP_LINK_BASE`, else `PUBLIC_URL`. A production Worker with neither answers `misconfigured`
 * (a link built from the request's Host could point a reset code at an attacker's domain); in
 * development and tests the request's origin stands in.
 */
export function mailLinkBase(config: Config, env: Env, requestUrl: string): string {
  const base = env.APP_LINK_BASE || config.publicUrl;
  if (base) return base;
  if (config.isProduction) {
    console.error("configuration error: set PUBLIC_URL or APP_LINK_BASE; mail links are never built from the Host");
    throw new AppError("misconfigured", "The server has no PUBLIC_URL or APP_LINK_BASE to put in mail links.");
  }
  return new URL(requestUrl).origin;
}

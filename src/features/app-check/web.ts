/** Web: a Cloudflare Turnstile token, checked with one `siteverify` call. */
import type { Config } from "../../config";
import { AppError } from "../../errors";

const refuse = (why: string): never => {
  throw new AppError("app_check_failed", `Turnstile: ${why}.`);
};

/** Verifies a Turnstile token; returns the hostname it was solved on. */
export async function verifyTurnstile(cfg: Config, token: string, ip: string | undefined): Promise<string> {
  const secret = cfg.appCheck.turnstileSecret ?? refuse("this server has no TURNSTILE_SECRET");
  const form = new URLSearchParams({ secret, response: token });
  if (ip) form.set("remoteip", ip);
  let body: { success?: unknown; hostname?: unknown };
  try {
    const res = await fetch(cfg.appCheck.turnstileUrl, {
      method: "POST",
      body: form,
      signal: AbortSignal.timeout(10_000),
    });
    body = (await res.json()) as typeof body;
  } catch {
    throw new AppError("unavailable", "Turnstile could not be reached; try again.");
  }
  if (body?.success !== true) refuse("the token was not accepted");
  return typeof body.hostname === "string" ? body.hostname : "web";
}

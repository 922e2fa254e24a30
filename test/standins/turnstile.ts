/**
 * Cloudflare Turnstile's siteverify: a form POST with `secret` and `response`. Tokens starting with
 * `pass` succeed (hostname app.example.com) when the secret is TURNSTILE_TEST_SECRET; anything
 * else fails with error codes, as the real service answers.
 */
import type { Standin } from "./server";

export const TURNSTILE_TEST_SECRET = "turnstile-test-secret";

export function turnstileStandin(): Standin {
  return {
    prefix: "/turnstile",
    handle(req) {
      if (req.path !== "/turnstile/siteverify" || req.method !== "POST") return null;
      const form = new URLSearchParams(req.body);
      if (form.get("secret") !== TURNSTILE_TEST_SECRET)
        return { status: 200, body: { success: false, "error-codes": ["invalid-input-secret"] } };
      if (!form.get("response")?.startsWith("pass"))
        return { status: 200, body: { success: false, "error-codes": ["invalid-input-response"] } };
      return { status: 200, body: { success: true, hostname: "app.example.com", "error-codes": [] } };
    },
  };
}

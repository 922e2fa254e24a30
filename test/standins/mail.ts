/**
 * A transactional-mail HTTP API stand-in (Resend-shaped): `POST /mail/send` with a Bearer key and
 * `{ from, to, subject, text }`. Answers 200 `{ id }`; 401 without the key; 422 on a bad body.
 */
import type { Standin } from "./server";

export const MAIL_API_KEY = "test-mail-api-key";

export function mailStandin(): Standin {
  let n = 0;
  return {
    prefix: "/mail",
    handle(req) {
      if (req.path !== "/mail/send" || req.method !== "POST") return null;
      if (req.headers.authorization !== `Bearer ${MAIL_API_KEY}`)
        return { status: 401, body: { message: "missing API key" } };
      let mail: Record<string, unknown>;
      try {
        mail = JSON.parse(req.body) as Record<string, unknown>;
      } catch {
        return { status: 422, body: { message: "invalid JSON" } };
      }
      for (const k of ["from", "to", "subject", "text"]) {
        if (typeof mail[k] !== "string" || !(mail[k] as string).length)
          return { status: 422, body: { message: `missing ${k}` } };
      }
      return { status: 200, body: { id: `mail_${++n}` } };
    },
  };
}

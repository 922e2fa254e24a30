/**
 * The one mailer interface. With `MAIL_PROVIDER_URL` set, mail is POSTed as JSON
 * (`{ from, to, subject, text }`, Bearer `MAIL_API_KEY`: the shape Resend and most HTTP mail
 * APIs accept). Without it, outside production, mail lands in the development outbox
 * (`GET /v1/dev/outbox`). In production without a provider, sending fails loudly.
 */
import type { Config } from "../../config";
import type { Database } from "../../db";
import { devOutbox } from "../../db/schema";
import { AppError } from "../../errors";
import { newId, nowIso } from "../../lib/ids";

export interface Mail {
  to: string;
  subject: string;
  text: string;
}

export interface Mailer {
  send(mail: Mail): Promise<void>;
}

export function createMailer(cfg: Config, db: Database): Mailer {
  const { providerUrl, apiKey, from } = cfg.mail;
  if (providerUrl) {
    return {
      async send(mail) {
        const res = await fetch(providerUrl, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
          },
          body: JSON.stringify({ from, to: mail.to, subject: mail.subject, text: mail.text }),
        });
        if (!res.ok) {
          // Never log the body we sent: it holds one-time tokens.
          console.error(`mail provider answered ${res.status} for "${mail.subject}"`);
          throw new AppError("unavailable", "Mail could not be sent.");
        }
      },
    };
  }
  if (cfg.isProduction) {
    return {
      async send() {
        console.error("configuration error: MAIL_PROVIDER_URL is not set in production; mail not sent");
        throw new AppError("misconfigured", "Mail is not configured.");
      },
    };
  }
  return {
    async send(mail) {
      await db.insert(devOutbox).values({ id: newId(), to: mail.to, subject: mail.subject, text: mail.text, createdAt: nowIso() });
    },
  };
}

/**
 * The one mailer interface. With `MAIL_PROVIDER_URL` set, mail is POSTed as JSON
 * (`{ from, to, subject, text }`, Bearer `MAIL_API_KEY`: the shape Resend and most HTTP mail
 * APIs accept). Without it, mail lands in the development outbox (`GET /v1/dev/outbox`) only when
 * `ENVIRONMENT` is `development` or `test`; anywhere else (production, staging, a typo) sending
 * fails closed with a logged error, since the outbox would hand every reset code to anyone.
 */
import { desc } from "drizzle-orm";
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

/** Environments where mail without a provider may land in the readable development outbox. */
const OUTBOX_ENVIRONMENTS: readonly string[] = ["development", "test"];

/** Whether mail goes to (and `GET /v1/dev/outbox` serves) the development outbox: no provider, a local environment. */
export function devOutboxEnabled(cfg: Config): boolean {
  return !cfg.mail.providerUrl && OUTBOX_ENVIRONMENTS.includes(cfg.environment);
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
  if (!devOutboxEnabled(cfg)) {
    return {
      async send() {
        console.error(
          `configuration error: MAIL_PROVIDER_URL is not set (ENVIRONMENT=${JSON.stringify(cfg.environment)}); ` +
            "mail not sent",
        );
        throw new AppError("misconfigured", "Mail is not configured.");
      },
    };
  }
  return {
    async send(mail) {
      await db
        .insert(devOutbox)
        .values({ id: newId(), to: mail.to, subject: mail.subject, text: mail.text, createdAt: nowIso() });
    },
  };
}

/** The newest mails in the development outbox (the route checks `devOutboxEnabled` first). */
export async function listOutbox(db: Database, limit = 100) {
  return db.select().from(devOutbox).orderBy(desc(devOutbox.createdAt), desc(devOutbox.id)).limit(limit);
}

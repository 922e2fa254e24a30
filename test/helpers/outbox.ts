/** Reads the development mail outbox (where mail lands in local development and tests). */
import { api } from "./api";

/**
 * The newest mail to `email` that a route sent. The example app's welcome mail (an after hook, run
 * by the Queue whenever it gets to it) is skipped: tests of it read the outbox themselves.
 */
export async function latestMailTo(email: string): Promise<{ subject: string; text: string } | undefined> {
  const res = await api<{ items: { to: string; subject: string; text: string }[] }>("/v1/dev/outbox");
  return res.body.items.find((m) => m.to === email && !m.subject.startsWith("Welcome to "));
}

/** The one-time code in a mail body ("...code: <token>"). */
export function codeIn(text: string): string {
  const m = /code: ([A-Za-z0-9_-]+)/.exec(text);
  if (!m) throw new Error(`no code in mail: ${text}`);
  return m[1]!;
}

/**
 * The mail to `email`, which must be in the outbox already: call the route that sends it with
 * `api(..., { settle: true })` when it mails after the response (in waitUntil).
 */
export async function mailTo(email: string): Promise<{ subject: string; text: string }> {
  const m = await latestMailTo(email);
  if (!m) throw new Error(`no mail to ${email} in the outbox`);
  return m;
}

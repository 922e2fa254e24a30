/** Reads the development mail outbox (where mail lands in local development and tests). */
import { api } from "./api";

export async function latestMailTo(email: string): Promise<{ subject: string; text: string } | undefined> {
  const res = await api<{ items: { to: string; subject: string; text: string }[] }>("/v1/dev/outbox");
  return res.body.items.find((m) => m.to === email);
}

/** The one-time code in a mail body ("...code: <token>"). */
export function codeIn(text: string): string {
  const m = /code: ([A-Za-z0-9_-]+)/.exec(text);
  if (!m) throw new Error(`no code in mail: ${text}`);
  return m[1]!;
}

/** Waits for mail to `email` (password-reset mail is sent after the response, in waitUntil). */
export async function waitForMail(email: string, timeoutMs = 5000): Promise<{ subject: string; text: string }> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = await latestMailTo(email);
    if (m) return m;
    if (Date.now() > end) throw new Error(`no mail to ${email} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

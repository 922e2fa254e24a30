/**
 * One attempt of one webhook delivery (called by the events run job), the signature it carries, and when
 * the next attempt is due. An attempt never throws for the receiver's failure: it returns the outcome.
 */
import { getConfig, limits } from "../../config";
import type { Database } from "../../db";
import { hex } from "../../lib/crypto";
import { adminEmails } from "../auth";
import type { OutpostEvent, Run, RunOutcome } from "../logic";
import { createMailer, webhookDisabledMail } from "../mail";
import type { Webhook } from "./schemas";
import { markFailed, markSucceeded, signingSecrets, webhookRow } from "./service";
import { webhookUrlProblem } from "./url";

/** The header a delivery is signed in. */
const SIGNATURE_HEADER = "Outpost-Signature";

const enc = new TextEncoder();

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, one `v1=` per secret. */
async function signatureHeader(secrets: string[], t: number, body: string): Promise<string> {
  const parts = [`t=${t}`];
  for (const secret of secrets) {
    const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
    ]);
    parts.push(`v1=${hex(await crypto.subtle.sign("HMAC", key, enc.encode(`${t}.${body}`)))}`);
  }
  return parts.join(",");
}

/** The JSON a receiver gets: delivery id, event, when it happened, the record (for an update, the previous one too). */
function deliveryBody(run: Pick<Run, "id">, event: OutpostEvent): string {
  const isUpdate = event.event.endsWith(".update");
  return JSON.stringify({
    id: run.id,
    event: event.event,
    createdAt: event.at,
    data: event.record ?? event.previous,
    ...(isUpdate ? { previous: event.previous } : {}),
  });
}

/** Delays after the 1st, 2nd... failed attempt; every later one waits the last. */
const RETRY_DELAYS_SEC = [30, 2 * 60, 10 * 60, 30 * 60, 60 * 60, 2 * 60 * 60];

/**
 * When to try a failed delivery again, after `attempts` attempts: 30 s, 2 min, 10 min, 30 min, 1 h, then
 * every 2 h, never past `createdAt` + 24 h; null once those 24 hours are over (the delivery is parked).
 */
export function webhookRetryAt(run: { attempts: number; createdAt: string }, now: Date): string | null {
  const end = Date.parse(run.createdAt) + limits.webhookRetrySec * 1000;
  if (!(now.getTime() < end)) return null;
  const delay = RETRY_DELAYS_SEC[Math.min(Math.max(run.attempts, 1), RETRY_DELAYS_SEC.length) - 1]!;
  return new Date(Math.min(now.getTime() + delay * 1000, end)).toISOString();
}

/** Tells every admin that a webhook was disabled; a mail that fails is logged, never thrown. */
async function tellAdmins(env: Env, db: Database, webhook: Webhook): Promise<void> {
  const cfg = getConfig(env);
  const mailer = createMailer(cfg, db);
  for (const to of await adminEmails(db)) {
    try {
      await mailer.send(webhookDisabledMail(cfg, to, webhook.url, webhook.failingSince));
    } catch (e) {
      console.error(`webhook ${webhook.id}: the disabled notice to an admin failed: ${(e as Error).message}`);
    }
  }
}

/** Records a failed attempt on the webhook (its failure clock; disabled after 24 h) and returns the outcome. */
async function failed(env: Env, db: Database, id: string, error: string, status?: number): Promise<RunOutcome> {
  const disabled = await markFailed(db, id);
  if (disabled) await tellAdmins(env, db, disabled);
  return status === undefined ? { ok: false, error } : { ok: false, error, status };
}

/**
 * One attempt of a delivery: loads the webhook (refused when gone or disabled), checks its URL again,
 * POSTs the signed body without following redirects, within `limits.webhookTimeoutMs`, and records the
 * webhook's failure clock (disabling it, and mailing the admins, after 24 hours of failures).
 */
export async function deliverWebhook(env: Env, db: Database, run: Run, event: OutpostEvent): Promise<RunOutcome> {
  const webhook = await webhookRow(db, run.target);
  // Nothing to retry: the run is parked at once (redeliver once the webhook is enabled again).
  if (!webhook) return { ok: false, error: "the webhook was deleted", final: true };
  if (!webhook.enabled) return { ok: false, error: "the webhook is disabled", final: true };
  const urlProblem = webhookUrlProblem(webhook.url, env.ENVIRONMENT);
  if (urlProblem) return failed(env, db, webhook.id, `URL refused: ${urlProblem}`);
  const body = deliveryBody(run, event);
  const cfg = getConfig(env);
  const secrets = await signingSecrets(cfg.jwtSecret, webhook);
  if (!secrets)
    return failed(env, db, webhook.id, "the signing secret cannot be read (JWT_SECRET changed?); rotate it");
  const signature = await signatureHeader(secrets, Math.floor(Date.now() / 1000), body);
  let res: Response;
  try {
    res = await fetch(webhook.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": `Outpost-Webhooks/${cfg.version}`,
        [SIGNATURE_HEADER]: signature,
      },
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(limits.webhookTimeoutMs),
    });
  } catch (e) {
    const name = (e as Error).name;
    const error =
      name === "TimeoutError" || name === "AbortError"
        ? `no answer within ${limits.webhookTimeoutMs / 1000} s`
        : `request failed: ${(e as Error).message}`;
    return failed(env, db, webhook.id, error);
  }
  // The answer's body is not read: only its status counts.
  await res.body?.cancel();
  if (res.status >= 200 && res.status < 300) {
    await markSucceeded(db, webhook.id);
    return { ok: true, status: res.status };
  }
  const location = res.headers.get("location");
  const error =
    res.status >= 300 && res.status < 400
      ? `redirect (HTTP ${res.status}${location ? ` to ${location}` : ""}) not followed`
      : `HTTP ${res.status}`;
  return failed(env, db, webhook.id, error.slice(0, 500), res.status);
}

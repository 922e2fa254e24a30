/**
 * Webhook test harness: the receiver stand-in, webhooks made through the API, runs made in D1, and
 * signatures checked independently of the code under test.
 */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { createDb } from "../../../src/db";
import type { OutpostEvent, Run } from "../../../src/features/logic";
import { newId, nowIso } from "../../../src/lib/ids";
import { api, serviceKey, standinRequests } from "../../helpers/api";

/** A fresh receiver name, so tests never read each other's deliveries. */
export const receiverName = (tag = "r") => `${tag}-${crypto.randomUUID().slice(0, 8)}`;

/** The URL of receiver `name` on the stand-in server. */
export const receiverUrl = (name: string) => `${env.STANDIN_URL}/webhooks/${name}`;

/** Steers receiver `name`'s next answers (see test/standins/webhooks.ts). */
export async function steer(
  name: string,
  b: { failTimes?: number; status?: number; redirectTo?: string; delayMs?: number },
): Promise<void> {
  const res = await fetch(`${env.STANDIN_URL}/webhook-control/${name}`, { method: "PUT", body: JSON.stringify(b) });
  expect(res.status).toBe(204);
}

/** What receiver `name` got, oldest first. */
export async function received(name: string) {
  return (await standinRequests(`/webhooks/${name}`)).filter((r) => r.path === `/webhooks/${name}`);
}

export interface CreatedHook {
  id: string;
  url: string;
  events: string[];
  secret: string;
}

/** Creates a webhook through the API (the service key by default) and returns it with its secret. */
export async function createHook(url: string, events: string[], token = serviceKey()): Promise<CreatedHook> {
  const res = await api("/v1/admin/webhooks", { token, body: { url, events } });
  expect(res.status, res.text).toBe(201);
  return res.body as CreatedHook;
}

export const db = () => createDb(env.DB);

/**
 * An event and a run of it for webhook `target`, written to D1 as the events pipeline would (the
 * event already dispatched, so no drain takes it): what `deliverWebhook` and the deliveries list read.
 */
export async function makeRun(
  target: string,
  o: {
    event?: string;
    record?: Record<string, unknown> | null;
    previous?: Record<string, unknown> | null;
    status?: "pending" | "running" | "done" | "parked";
    createdAt?: string;
  } = {},
): Promise<{ run: Run; event: OutpostEvent }> {
  const name = o.event ?? "notes.create";
  const recordId = newId();
  const record = o.record === undefined ? { id: recordId, title: "Hello", version: 1 } : o.record;
  const previous = o.previous ?? null;
  const at = nowIso();
  const row = await env.DB.prepare(
    "INSERT INTO events (event, record_id, record, previous, at, dispatched) VALUES (?, ?, ?, ?, ?, 1) RETURNING seq",
  )
    .bind(name, recordId, record ? JSON.stringify(record) : null, previous ? JSON.stringify(previous) : null, at)
    .first<{ seq: number }>();
  const id = newId();
  const createdAt = o.createdAt ?? at;
  await env.DB.prepare(
    `INSERT INTO event_runs (id, seq, target, status, attempts, next_attempt_at, created_at)
     VALUES (?, ?, ?, ?, 0, ?, ?)`,
  )
    .bind(id, row!.seq, target, o.status ?? "running", createdAt, createdAt)
    .run();
  return {
    run: { id, seq: row!.seq, target, attempt: 1, createdAt },
    event: { seq: row!.seq, event: name, recordId, record, previous, at },
  };
}

const enc = new TextEncoder();

/** Hex HMAC-SHA256 of `data` under `secret`, computed here (not with the code under test). */
export async function hmacHex(secret: string, data: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(data)));
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** `t=…,v1=…[,v1=…]` split into its timestamp and signatures. */
export function parseSignature(header: string): { t: string; v1: string[] } {
  const parts = header.split(",").map((p) => p.split("="));
  const t = parts.find(([k]) => k === "t")?.[1] ?? "";
  return { t, v1: parts.filter(([k]) => k === "v1").map(([, val]) => val ?? "") };
}

/** A webhook row's columns, read straight from D1. */
export async function hookRow(id: string) {
  return env.DB.prepare("SELECT * FROM webhooks WHERE id = ?").bind(id).first<{
    url: string;
    secret: string;
    previous_secret: string | null;
    previous_until: string | null;
    enabled: number;
    failing_since: string | null;
    disabled_at: string | null;
    created_by: string | null;
  }>();
}

/** The events webhook `id` listens to, from its listener rows. */
export async function listenersOf(id: string): Promise<string[]> {
  const r = await env.DB.prepare("SELECT event FROM event_listeners WHERE source = ? ORDER BY event")
    .bind(`webhook:${id}`)
    .all<{ event: string }>();
  return r.results.map((x) => x.event);
}

/** Removes every webhook and its listener rows, so no later test's writes raise events for them. */
export async function forgetWebhooks(): Promise<void> {
  await env.DB.batch([
    env.DB.prepare("DELETE FROM event_listeners WHERE source LIKE 'webhook:%'"),
    env.DB.prepare("DELETE FROM webhooks"),
  ]);
}

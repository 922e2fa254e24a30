/**
 * How a write starts the pipeline after its commit: its change-log row returns `listened` (does
 * anyone listen to an event it can raise?), and only then is one `events.drain` job sent. A write
 * nobody listens to sends nothing; the cron's backstop drains whatever a lost job left behind.
 */
import { sql } from "drizzle-orm";
import { eventListeners } from "../../db/schema";
import type { EventJob } from "./types";

const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** `EXISTS` a listener of any of `events` (or of every event, `*`). Event names are the app's declared ones. */
export const listenedSql = (events: readonly string[]) =>
  sql<number>`EXISTS (SELECT 1 FROM ${eventListeners} WHERE ${eventListeners.event} IN (${sql.raw(
    [...events, "*"].map(lit).join(", "),
  )}))`;

/** Asks the Queue for a drain of the events just written. Never throws (the backstop drains later). */
export async function sendDrain(env: Env): Promise<void> {
  try {
    await env.JOBS.send({ type: "events.drain" } satisfies EventJob);
  } catch (e) {
    console.error("events: could not queue a drain (the backstop will):", (e as Error).message);
  }
}

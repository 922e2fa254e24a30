/**
 * From the events outbox to the app's after hooks and the webhooks, exactly once per change and
 * target:
 * - `drain`: the undispatched events get one run per target (the app's after hook, each enabled
 *   webhook that subscribes), made idempotently (`(seq, target)` is unique) in one batch that also
 *   marks the events dispatched; then one `events.run` job per new run.
 * - `runOne`: claims the run (a conditional UPDATE: pending and due, or running with its lease run
 *   out), so a redelivered or duplicated job finds nothing to do; runs it; records the outcome: done,
 *   or pending again with the next attempt's time (and a delayed job), or parked after the last.
 * - `backstop` (the cron): re-sends what a lost job or a dead Worker left behind.
 * A run that completed is never run again by the pipeline; a Worker that dies between a hook's side
 * effect and the recorded outcome runs it again once its lease ends (docs/logic.md: "exactly once").
 */
import { and, asc, eq, inArray, lt, lte, or, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { type Database, runBatch } from "../../db";
import { eventRuns, events, webhooks } from "../../db/schema";
import { chunks } from "../../lib/chunks";
import { newId, nowIso } from "../../lib/ids";
import { afterHook, type EventJob, type OutpostEvent, type Run, type RunOutcome, servicesFor } from "../logic";
import { shapeEvent } from "./shape";

/** Events made into runs per drain job (a fuller outbox sends another drain). */
const DRAIN_BATCH = 100;
/** How long a claimed run is its claimer's; after that another job may claim it again. */
const LEASE_MS = 5 * 60_000;
/** A job may arrive a little before its run's due time (clock skew): it still runs. */
const EARLY_MS = 5_000;
/** Attempts of an after hook before it is parked (10 s, 20 s, 40 s … about 21 min for the last). */
export const HOOK_ATTEMPTS = 8;
/** The Queue delays a message by at most 12 hours; a later retry is left to the backstop. */
const MAX_DELAY_S = 12 * 3600;
/** A pending run this late for its attempt lost its job: the backstop sends it again. */
const LOST_AFTER_MS = 60_000;

const iso = (ms: number) => new Date(ms).toISOString();

async function send(env: Env, jobs: EventJob[], delaySeconds = 0): Promise<void> {
  for (const part of chunks(jobs, 100))
    await env.JOBS.sendBatch(part.map((body) => ({ body, ...(delaySeconds ? { delaySeconds } : {}) })));
}

/** Does webhook `events` (a JSON array) subscribe to `event`? */
const subscribes = (list: string, event: string) => {
  const names = JSON.parse(list) as string[];
  return names.includes("*") || names.includes(event);
};

/** Makes the runs of undispatched events and queues them. Returns how many events it dispatched. */
export async function drain(env: Env, db: Database): Promise<number> {
  const [pending, subscribed] = await runBatch(db, [
    db
      .select({ seq: events.seq, event: events.event })
      .from(events)
      .where(eq(events.dispatched, false))
      .orderBy(asc(events.seq))
      .limit(DRAIN_BATCH),
    db.select({ id: webhooks.id, events: webhooks.events }).from(webhooks).where(eq(webhooks.enabled, true)),
  ]);
  const rows = pending as { seq: number; event: string }[];
  if (rows.length === 0) return 0;
  const now = nowIso();
  const runs = rows.flatMap((e) => [
    ...(afterHook(e.event) ? [{ seq: e.seq, target: "hook" }] : []),
    ...(subscribed as { id: string; events: string }[])
      .filter((w) => subscribes(w.events, e.event))
      .map((w) => ({ seq: e.seq, target: w.id })),
  ]);
  const statements: BatchItem<"sqlite">[] = chunks(runs, 12).map((part) =>
    db
      .insert(eventRuns)
      .values(
        part.map((r) => ({
          id: newId(),
          seq: r.seq,
          target: r.target,
          status: "pending" as const,
          nextAttemptAt: now,
          createdAt: now,
        })),
      )
      .onConflictDoNothing()
      .returning({ id: eventRuns.id }),
  );
  // Exactly the rows read: the first undispatched ones in seq order, so every undispatched seq up to
  // the last one read (a later commit gets a higher seq). One range, not a list (D1 binds at most
  // 100 parameters per statement).
  statements.push(
    db
      .update(events)
      .set({ dispatched: true })
      .where(and(eq(events.dispatched, false), lte(events.seq, rows.at(-1)!.seq))),
  );
  const results = await runBatch(db, statements);
  // Only the runs this drain made: a concurrent drain that made one first queues it itself.
  const made = results.slice(0, -1).flatMap((r) => (r as { id: string }[]).map((x) => x.id));
  await send(
    env,
    made.map((id) => ({ type: "events.run", id })),
  );
  if (rows.length === DRAIN_BATCH) await send(env, [{ type: "events.drain" }]);
  return rows.length;
}

/** What runs one attempt of a run: the app's after hook, or a webhook delivery. */
export type Executor = (env: Env, db: Database, run: Run, event: OutpostEvent) => Promise<RunOutcome>;

/** When a failed attempt is tried again (null: never, the run is parked). */
export type RetryPolicy = (run: { attempts: number; createdAt: string }, now: Date) => string | null;

/** Runs the app's after hook of the event, with the services of a background job (its writes awaited). */
export const runHook: Executor = async (env, db, _run, event) => {
  const hook = afterHook(event.event);
  // The hook was removed after the event was written: nothing to run.
  if (!hook) return { ok: true };
  const pending: Promise<unknown>[] = [];
  const app = servicesFor({ env, db, waitUntil: (p) => pending.push(p) });
  const { record, previous, ...meta } = event;
  try {
    await (hook as (x: unknown) => unknown)({ event: meta, record, previous, app });
    return { ok: true };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  } finally {
    await Promise.allSettled(pending);
  }
};

/** 10 s, 20 s, 40 s … for an after hook; parked after `HOOK_ATTEMPTS`. */
export const hookRetryAt: RetryPolicy = (run, now) =>
  run.attempts >= HOOK_ATTEMPTS ? null : iso(now.getTime() + 10_000 * 2 ** (run.attempts - 1));

/** Claims run `id` for this attempt and reads its event, in one round trip; null when it is not claimable. */
async function claim(db: Database, id: string, now: Date): Promise<{ run: Run; event: OutpostEvent } | null> {
  const at = now.toISOString();
  const [claimed, event] = await runBatch(db, [
    db
      .update(eventRuns)
      .set({ status: "running", attempts: sql`${eventRuns.attempts} + 1`, leaseUntil: iso(now.getTime() + LEASE_MS) })
      .where(
        and(
          eq(eventRuns.id, id),
          or(
            and(eq(eventRuns.status, "pending"), lte(eventRuns.nextAttemptAt, iso(now.getTime() + EARLY_MS))),
            and(eq(eventRuns.status, "running"), lt(eventRuns.leaseUntil, at)),
          ),
        ),
      )
      .returning({
        id: eventRuns.id,
        seq: eventRuns.seq,
        target: eventRuns.target,
        attempts: eventRuns.attempts,
        createdAt: eventRuns.createdAt,
      }),
    db
      .select()
      .from(events)
      .where(eq(events.seq, sql`(SELECT ${eventRuns.seq} FROM ${eventRuns} WHERE ${eventRuns.id} = ${id})`)),
  ]);
  const r = (claimed as (Omit<Run, "attempt"> & { attempts: number })[])[0];
  const e = (event as (typeof events.$inferSelect)[])[0];
  if (!r || !e) return null;
  return {
    run: { id: r.id, seq: r.seq, target: r.target, attempt: r.attempts, createdAt: r.createdAt },
    event: shapeEvent(e),
  };
}

/**
 * Runs one attempt of run `id` (the `events.run` job) with the executor and retry policy of its
 * target. Returns what happened, for logs and tests: `skipped` when the run was not claimable
 * (done, parked, someone else's lease, not due yet).
 */
export async function runOne(
  env: Env,
  db: Database,
  id: string,
  targets: (target: string) => { execute: Executor; retryAt: RetryPolicy },
  now = () => new Date(),
): Promise<"done" | "retry" | "parked" | "skipped"> {
  const claimed = await claim(db, id, now());
  if (!claimed) return "skipped";
  const { run, event } = claimed;
  const { execute, retryAt } = targets(run.target);
  let outcome: RunOutcome;
  try {
    outcome = await execute(env, db, run, event);
  } catch (e) {
    outcome = { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  const end = now();
  const mine = and(eq(eventRuns.id, id), eq(eventRuns.status, "running"), eq(eventRuns.attempts, run.attempt));
  const status = outcome.status ?? null;
  if (outcome.ok) {
    await db
      .update(eventRuns)
      .set({ status: "done", finishedAt: end.toISOString(), leaseUntil: null, lastStatus: status })
      .where(mine);
    return "done";
  }
  const error = outcome.error.slice(0, 500);
  const next = outcome.final ? null : retryAt({ attempts: run.attempt, createdAt: run.createdAt }, end);
  if (next === null) {
    await db
      .update(eventRuns)
      .set({ status: "parked", finishedAt: end.toISOString(), leaseUntil: null, lastError: error, lastStatus: status })
      .where(mine);
    console.error(`events: run ${id} (${event.event}, ${run.target}) parked after ${run.attempt} attempts: ${error}`);
    return "parked";
  }
  await db
    .update(eventRuns)
    .set({ status: "pending", nextAttemptAt: next, leaseUntil: null, lastError: error, lastStatus: status })
    .where(mine);
  const delay = Math.ceil((Date.parse(next) - end.getTime()) / 1000);
  // Beyond the Queue's longest delay, the backstop sends it when it is due.
  if (delay <= MAX_DELAY_S) await send(env, [{ type: "events.run", id }], Math.max(0, delay));
  return "retry";
}

/**
 * The cron's part: a drain when events wait undispatched, and the jobs of runs that are due but
 * have no job any more (lost, or beyond the Queue's delay) or whose claimer died (lease over).
 */
export async function backstop(env: Env, db: Database, now: Date): Promise<{ drained: boolean; resent: number }> {
  const at = now.toISOString();
  const [waiting, due] = await runBatch(db, [
    db.select({ seq: events.seq }).from(events).where(eq(events.dispatched, false)).limit(1),
    db
      .select({ id: eventRuns.id })
      .from(eventRuns)
      .where(
        and(
          sql`${eventRuns.status} IN ('pending', 'running')`,
          lte(eventRuns.nextAttemptAt, iso(now.getTime() - LOST_AFTER_MS)),
          or(eq(eventRuns.status, "pending"), lt(eventRuns.leaseUntil, at)),
        ),
      )
      .limit(1000),
  ]);
  const drained = (waiting as unknown[]).length > 0;
  const ids = (due as { id: string }[]).map((r) => r.id);
  await send(env, [
    ...(drained ? [{ type: "events.drain" } as const] : []),
    ...ids.map((id) => ({ type: "events.run" as const, id })),
  ]);
  return { drained, resent: ids.length };
}

/** Events older than this whose runs all finished are deleted (their runs with them). */
const KEEP_DONE_MS = 7 * 86_400_000;
/** Parked runs stay visible (and can be run again) this long. */
const KEEP_PARKED_MS = 30 * 86_400_000;

/** Deletes old events whose runs are all done (and, after 30 days, those with parked runs). */
export async function pruneEvents(db: Database, now: Date): Promise<void> {
  const unfinished = (statuses: string) =>
    sql`EXISTS (SELECT 1 FROM ${eventRuns} WHERE ${eventRuns.seq} = ${events.seq} AND ${eventRuns.status} IN ${sql.raw(statuses)})`;
  await runBatch(db, [
    db
      .delete(events)
      .where(
        and(
          eq(events.dispatched, true),
          lt(events.at, iso(now.getTime() - KEEP_DONE_MS)),
          sql`NOT ${unfinished("('pending', 'running', 'parked')")}`,
        ),
      ),
    db
      .delete(events)
      .where(
        and(
          eq(events.dispatched, true),
          lt(events.at, iso(now.getTime() - KEEP_PARKED_MS)),
          sql`NOT ${unfinished("('pending', 'running')")}`,
        ),
      ),
  ]);
}

/** Puts a parked (or finished) run back in the queue: pending now, attempts counted from zero. */
export async function runAgain(env: Env, db: Database, id: string): Promise<boolean> {
  const done = await db
    .update(eventRuns)
    .set({ status: "pending", attempts: 0, nextAttemptAt: nowIso(), finishedAt: null, leaseUntil: null })
    .where(and(eq(eventRuns.id, id), inArray(eventRuns.status, ["parked", "done"])))
    .returning({ id: eventRuns.id });
  if (done.length === 0) return false;
  await send(env, [{ type: "events.run", id }]);
  return true;
}

/**
 * The events pipeline: the app's after hooks and the webhooks, driven by the events outbox through
 * the Queue (see pipeline.ts), and the services hooks get (`appServices`, wired in by the root).
 */
import { primaryDb } from "../../db";
import type { FeatureParts, JobHandler } from "../../lifecycle";
import type { EventJob } from "../logic";
import { deliverWebhook, webhookRetryAt } from "../webhooks";
import {
  backstop,
  drain,
  type Executor,
  hookRetryAt,
  pruneEvents,
  type RetryPolicy,
  runHook,
  runOne,
} from "./pipeline";

export { runAgain } from "./pipeline";
export { listRuns, RUN_STATUSES, type RunRow, type RunStatus, runCounts } from "./runs";
export { appServices } from "./services";

/** Who runs a run's target: the app's after hook (`hook`), else a webhook (its id). */
export function eventsTargets(target: string): { execute: Executor; retryAt: RetryPolicy } {
  if (target === "hook") return { execute: runHook, retryAt: hookRetryAt };
  return { execute: deliverWebhook, retryAt: webhookRetryAt };
}

export const eventsJobHandlers: {
  "events.drain": JobHandler<Extract<EventJob, { type: "events.drain" }>>;
  "events.run": JobHandler<Extract<EventJob, { type: "events.run" }>>;
} = {
  "events.drain": (env) => drain(env, primaryDb(env.DB)),
  "events.run": (env, job) => runOne(env, primaryDb(env.DB), job.id, eventsTargets),
};

export const eventsParts: FeatureParts = {
  cleanupTasks: [
    async (env, db, now) => {
      await backstop(env, db, now);
      await pruneEvents(db, now);
    },
  ],
};

/**
 * Background jobs on the `JOBS` Queue: the union of every feature's job types, and one consumer
 * that dispatches by `type` to the feature that handles it. Features declare their jobs and
 * handlers; this file only assembles them.
 */
import { type AppleRevokeJob, authJobHandlers } from "./features/auth";
import type { ChatMessageJob } from "./features/chat";
import { eventsJobHandlers } from "./features/events";
import { type FilesImageJob, filesJobHandlers } from "./features/files";
import type { EventJob } from "./features/logic";
import { type PushJob, pushJobHandlers } from "./features/push";
import type { JobHandler } from "./lifecycle";
// Hooks run by the events jobs get their `app` services from the assembled parts.
import "./lifecycle-parts";

/** Every job the queue carries. */
export type Job = ChatMessageJob | PushJob | FilesImageJob | EventJob | AppleRevokeJob;

const handlers: { [T in Job["type"]]: JobHandler<Extract<Job, { type: T }>> } = {
  ...pushJobHandlers,
  ...filesJobHandlers,
  ...eventsJobHandlers,
  ...authJobHandlers,
};

/** The Queue consumer: each message is acked on success and retried (with backoff) on failure. */
export async function handleQueue(batch: MessageBatch<Job>, env: Env): Promise<void> {
  for (const msg of batch.messages) {
    const job = msg.body;
    const handler = handlers[job.type] as JobHandler<Job> | undefined;
    if (!handler) {
      console.error(`queue: unknown job type ${String((job as { type?: unknown }).type)}; dropped`);
      msg.ack();
      continue;
    }
    try {
      await handler(env, job);
      msg.ack();
    } catch (e) {
      console.error(`queue: job ${job.type} failed (attempt ${msg.attempts}):`, (e as Error).message);
      msg.retry({ delaySeconds: Math.min(300, 2 ** msg.attempts * 5) });
    }
  }
}

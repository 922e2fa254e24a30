/**
 * Background jobs on the `JOBS` Queue: one union of job types, one consumer that dispatches by
 * `type`. Features add their job type and handler here.
 */

/** Every job the queue carries. */
export type Job = { type: "noop" };

type Handler<T extends Job["type"]> = (env: Env, job: Extract<Job, { type: T }>) => Promise<void>;

const handlers: { [T in Job["type"]]: Handler<T> } = {
  noop: async () => {},
};

/** Enqueues a job. */
export async function enqueue(env: Env, job: Job): Promise<void> {
  await env.JOBS.send(job, { contentType: "json" });
}

/** The Queue consumer: each message is acked on success and retried (with backoff) on failure. */
export async function handleQueue(batch: MessageBatch<Job>, env: Env): Promise<void> {
  for (const msg of batch.messages) {
    const job = msg.body;
    const handler = handlers[job.type] as Handler<Job["type"]> | undefined;
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

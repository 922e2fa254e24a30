/**
 * Background jobs on the `JOBS` Queue: one union of job types, one consumer that dispatches by
 * `type`. Features add their job type and handler here.
 */
import { analyzeImage } from "./features/files/images";
import { handleChatMessage, handlePushDeliver, handlePushReceipts, handlePushSend, type PushJob } from "./features/push/delivery";

/** Every job the queue carries. */
export type Job =
  | { type: "noop" }
  /** A chat message was stored; push it to `recipients` (members with no open socket in the room, never the sender). */
  | { type: "chat.message"; roomId: string; roomName: string | null; roomKind: "direct" | "group"; seq: number; messageId: string; senderId: string; senderName: string | null; text: string | null; hasFile: boolean; recipients: string[] }
  /** Push: an admin push to users (`push.send`), a slice/retry of deliveries (`push.deliver`), an Expo receipt check (`push.receipts`). */
  | PushJob
  /** An image file was stored: record its width, height and placeholder. */
  | { type: "files.image"; fileId: string };

/** A job handler; a thrown error retries the message with backoff, a resolved one acks it. */
type Handler<T extends Job["type"]> = (env: Env, job: Extract<Job, { type: T }>) => Promise<unknown>;

const handlers: { [T in Job["type"]]: Handler<T> } = {
  noop: async () => {},
  "chat.message": handleChatMessage,
  "push.send": handlePushSend,
  "push.deliver": handlePushDeliver,
  "push.receipts": handlePushReceipts,
  "files.image": (env, job) => analyzeImage(env, job.fileId),
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

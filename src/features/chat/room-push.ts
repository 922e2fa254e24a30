/** The push jobs a room's flush queues: one per new message, grouped into Queue batches. */
import type { ChatMessageJob } from "./jobs";
import type { Message } from "./protocol";
import type { MirrorResult } from "./service";

/** A Queue batch stays under 256 KB: jobs are grouped up to this many bytes of JSON. */
const JOB_BATCH_BYTES = 200 * 1024;

/** The push job of a message: members with no open socket here, never the sender. */
export function pushJob(message: Message, room: MirrorResult, online: Set<string>): ChatMessageJob {
  return {
    type: "chat.message",
    roomId: message.roomId,
    roomName: room.name,
    roomKind: room.kind,
    seq: message.seq,
    messageId: message.id,
    senderId: message.senderId,
    senderName: room.senderNames.get(message.senderId) ?? null,
    text: message.text,
    hasFile: message.fileId !== null,
    recipients: room.memberIds.filter((id) => id !== message.senderId && !online.has(id)),
  };
}

/** Jobs grouped for `sendBatch`: at most `perBatch` and about JOB_BATCH_BYTES of JSON each. */
export function jobBatches(jobs: ChatMessageJob[], perBatch: number): ChatMessageJob[][] {
  const out: ChatMessageJob[][] = [];
  let current: ChatMessageJob[] = [];
  let bytes = 0;
  for (const job of jobs) {
    const size = JSON.stringify(job).length;
    if (current.length > 0 && (current.length >= perBatch || bytes + size > JOB_BATCH_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(job);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Sends jobs to the JOBS queue in one call. */
export async function queueJobs(queue: Queue, jobs: ChatMessageJob[]): Promise<void> {
  await queue.sendBatch(jobs.map((body) => ({ body, contentType: "json" as const })));
}

/**
 * Push delivery, run by the Queue consumer. Four jobs:
 * - `chat.message` (queued by chat when a message is stored): recipients who muted the room or
 *   blocked the sender are dropped, the rest get the message on every device;
 * - `push.send` (queued by `POST /v1/admin/push`): a message to every device of some users;
 * - `push.deliver`: a slice of deliveries, either a fan-out too big for one job or the retry of
 *   deliveries that failed transiently. Only the failed deliveries are retried, so a device that
 *   got the notification never gets it twice;
 * - `push.receipts`: a later look at Expo's receipts, where APNs/FCM verdicts on Expo tickets land.
 * Dead tokens are deleted as soon as a provider reports them.
 */
import { getConfig, limits } from "../../config";
import { type Database, primaryDb } from "../../db";
import { chunks } from "../../lib/chunks";
import { blockersAmong } from "../blocks";
import { type ChatMessageJob, isMessageDeleted, unmutedMembers } from "../chat";
import { apnsSender } from "./senders/apns";
import { expoDeadTickets, expoSender } from "./senders/expo";
import { fcmSender } from "./senders/fcm";
import type { Outcome, Provider, PushMessage, PushSender } from "./senders/types";
import { deleteDevices, devicesOfTargets, devicesOfUsers, type Target, type TargetDevice } from "./service";

export type PushSendJob = { type: "push.send"; userIds: string[]; message: PushMessage };
/** `attempt` is the try this job makes, starting at 1. */
export type PushDeliverJob = { type: "push.deliver"; targets: Target[]; message: PushMessage; attempt: number };
/** Expo tickets to check later, with the device each was sent to. */
export type PushReceiptsJob = { type: "push.receipts"; receipts: { ticket: string; deviceId: string }[] };
/** The push feature's own jobs (added to the Job union in src/jobs.ts). */
export type PushJob = PushSendJob | PushDeliverJob | PushReceiptsJob;

/** What one delivery run did (returned for tests and logged). */
export interface DeliverySummary {
  sent: number;
  dead: number;
  failed: number;
  /** Deliveries queued again for a later try. */
  retried: number;
  /** Transient failures given up on after the last try. */
  dropped: number;
  /** Deliveries handed to `push.deliver` jobs because the fan-out was large. */
  queued: number;
}

const emptySummary = (): DeliverySummary => ({ sent: 0, dead: 0, failed: 0, retried: 0, dropped: 0, queued: 0 });

/** Cuts `s` to `max` characters (whole code points), marking the cut with an ellipsis. */
function cut(s: string, max: number): string {
  const cps = [...s];
  return cps.length <= max
    ? s
    : `${cps
        .slice(0, max - 1)
        .join("")
        .trimEnd()}…`;
}

/** The notification for a chat message: title names the sender (and the group), body is the text. */
export function chatNotification(job: ChatMessageJob): PushMessage {
  const sender = job.senderName?.trim() || null;
  const room = job.roomName?.trim() || null;
  const title =
    job.roomKind === "group"
      ? sender && room
        ? `${sender} in ${room}`
        : (room ?? sender ?? "New message")
      : (sender ?? room ?? "New message");
  const text = job.text?.replace(/\s+/g, " ").trim() ?? "";
  const body = text ? cut(text, limits.pushChatBodyMax) : job.hasFile ? "Sent an attachment" : "New message";
  return {
    title: cut(title, limits.pushTitleMax),
    body,
    data: { roomId: job.roomId, seq: String(job.seq) },
    threadId: job.roomId,
  };
}

/** Backoff before try `attempt + 1`: base doubling per try, capped; a longer Retry-After wins. */
function retryDelaySec(attempt: number, retryAfterSec: number): number {
  const backoff = limits.pushRetryBaseSec * 2 ** Math.max(0, attempt - 1);
  return Math.min(limits.pushRetryMaxSec, Math.max(backoff, retryAfterSec));
}

/** Thrown when some `push.deliver` jobs were queued, then queueing failed: a rerun of the caller would queue twice. */
class PartlyQueued extends Error {
  constructor(
    readonly queuedTargets: number,
    cause: unknown,
  ) {
    super(
      `queueing push.deliver jobs failed after ${queuedTargets} deliveries were queued: ` +
        ((cause as Error)?.message ?? String(cause)),
    );
  }
}

/** Queues `push.deliver` jobs of pushDevicesPerJob `targets` each; a failure after the first throws `PartlyQueued`. */
async function enqueueDeliveries(
  env: Env,
  targets: readonly Target[],
  message: PushMessage,
  attempt: number,
  delaySeconds: number,
): Promise<void> {
  const jobs = chunks(targets, limits.pushDevicesPerJob).map(
    (t): PushDeliverJob => ({ type: "push.deliver", targets: t, message, attempt }),
  );
  let queuedTargets = 0;
  // A deliver job is at most ~8 KB; 20 per batch stays well under the Queue's 256 KB batch limit.
  for (const batch of chunks(jobs, 20)) {
    try {
      await env.JOBS.sendBatch(
        batch.map((body) => ({ body, contentType: "json" as const, ...(delaySeconds > 0 ? { delaySeconds } : {}) })),
      );
    } catch (e) {
      if (queuedTargets === 0) throw e;
      throw new PartlyQueued(queuedTargets, e);
    }
    queuedTargets += batch.reduce((n, j) => n + j.targets.length, 0);
  }
}

function senders(env: Env): Record<Provider, PushSender> {
  const { push } = getConfig(env);
  return { fcm: fcmSender(push.fcm), apns: apnsSender(push.apns), expo: expoSender(push.expo) };
}

/**
 * Sends `message` to `devices` (try number `attempt`), deletes dead tokens, and queues the
 * transient failures for another try with backoff.
 */
async function deliver(
  env: Env,
  db: Database,
  devices: readonly TargetDevice[],
  message: PushMessage,
  attempt: number,
): Promise<DeliverySummary> {
  const summary = emptySummary();
  if (devices.length === 0) return summary;
  const byProvider = new Map<Provider, TargetDevice[]>();
  for (const d of devices) {
    const list = byProvider.get(d.provider);
    if (list) list.push(d);
    else byProvider.set(d.provider, [d]);
  }
  const all = senders(env);
  // One provider at a time: each sender already uses the 6 connections a Worker may hold open,
  // and requests queued behind them would eat into their own timeouts.
  const results: (readonly [TargetDevice, Outcome])[][] = [];
  for (const [provider, ds] of byProvider) {
    const outcomes = await all[provider].send(
      ds.map((d) => d.token),
      message,
    );
    results.push(ds.map((d, i) => [d, outcomes[i] ?? ({ status: "failed", reason: "no outcome" } as const)] as const));
  }

  const dead: string[] = [];
  const again: Target[] = [];
  const receipts: PushReceiptsJob["receipts"] = [];
  let retryAfter = 0;
  const reasons = new Map<string, number>();
  for (const [d, o] of results.flat()) {
    if (o.status === "sent") {
      summary.sent++;
      if (o.ticket) receipts.push({ ticket: o.ticket, deviceId: d.deviceId });
      continue;
    }
    const why = `${o.status}: ${o.reason}`;
    reasons.set(why, (reasons.get(why) ?? 0) + 1);
    if (o.status === "dead") dead.push(d.deviceId);
    else if (o.status === "failed") summary.failed++;
    else {
      again.push({ deviceId: d.deviceId, userId: d.userId });
      retryAfter = Math.max(retryAfter, o.retryAfterSec ?? 0);
    }
  }

  if (dead.length) {
    summary.dead = dead.length;
    // A failed delete only costs another send to a dead token; the provider will say so again.
    await deleteDevices(db, dead).catch((e: unknown) =>
      console.error("push: deleting dead devices failed:", (e as Error).message),
    );
  }
  if (again.length) {
    if (attempt < limits.pushMaxAttempts) {
      try {
        await enqueueDeliveries(env, again, message, attempt + 1, retryDelaySec(attempt, retryAfter));
        summary.retried = again.length;
      } catch (e) {
        // A throw makes the consumer run the whole job again, which re-sends to every device in it.
        // That is only safe while none of them got the message; otherwise give up on the failed ones
        // rather than push the delivered ones twice.
        if (summary.sent > 0) {
          console.error(
            `push: queueing ${again.length} retr${again.length === 1 ? "y" : "ies"} failed; ` +
              "given up so delivered devices are not pushed twice:",
            (e as Error).message,
          );
          summary.dropped = again.length;
        } else {
          throw e;
        }
      }
    } else {
      summary.dropped = again.length;
    }
  }
  if (receipts.length) {
    // Best effort: failing here must not fail the job, or every device would be pushed again.
    const jobs: PushReceiptsJob[] = chunks(receipts, 300).map((r) => ({ type: "push.receipts", receipts: r }));
    await env.JOBS.sendBatch(
      jobs.map((body) => ({ body, contentType: "json" as const, delaySeconds: limits.pushExpoReceiptDelaySec })),
    ).catch((e: unknown) => console.error("push: queueing the Expo receipt check failed:", (e as Error).message));
  }
  if (reasons.size) {
    const gaveUp = summary.dropped ? ` (last try: ${summary.dropped} given up)` : "";
    console.warn(`push: try ${attempt}: ${[...reasons].map(([r, n]) => `${n}× ${r}`).join("; ")}${gaveUp}`);
  }
  return summary;
}

/** Sends to these devices now, or splits a large fan-out into `push.deliver` jobs. */
async function fanOut(
  env: Env,
  db: Database,
  devices: readonly TargetDevice[],
  message: PushMessage,
): Promise<DeliverySummary> {
  if (devices.length <= limits.pushDevicesPerJob) return deliver(env, db, devices, message, 1);
  try {
    await enqueueDeliveries(
      env,
      devices.map((d) => ({ deviceId: d.deviceId, userId: d.userId })),
      message,
      1,
      0,
    );
  } catch (e) {
    // Nothing queued: failing the job lets the queue run it again. Some slices queued: running it
    // again would push those devices twice, so the rest is given up instead.
    if (!(e instanceof PartlyQueued)) throw e;
    console.error(`push: ${e.message}; ${devices.length - e.queuedTargets} given up`);
    return { ...emptySummary(), queued: e.queuedTargets, dropped: devices.length - e.queuedTargets };
  }
  return { ...emptySummary(), queued: devices.length };
}

/** `chat.message`: push to recipients who have not muted the room nor blocked the sender (the sender never). */
export async function handleChatMessage(env: Env, job: ChatMessageJob): Promise<DeliverySummary> {
  const recipients = job.recipients.filter((id) => id !== job.senderId);
  if (recipients.length === 0) return emptySummary();
  const db = primaryDb(env.DB);
  const unmuted = await unmutedMembers(db, job.roomId, recipients);
  if (unmuted.length === 0) return emptySummary();
  // One query for the whole job: who among them blocked the sender. They keep the message in the room, without a push.
  const blockers = await blockersAmong(db, job.senderId, unmuted);
  const users = unmuted.filter((id) => !blockers.has(id));
  if (users.length === 0) return emptySummary();
  // The message may have been deleted while its job waited in the queue: then nothing is sent.
  if (await isMessageDeleted(env, job.roomId, job.seq)) return emptySummary();
  return fanOut(env, db, await devicesOfUsers(db, users), chatNotification(job));
}

/** `push.send`: an admin push to every device of the named users. */
export async function handlePushSend(env: Env, job: PushSendJob): Promise<DeliverySummary> {
  const db = primaryDb(env.DB);
  return fanOut(env, db, await devicesOfUsers(db, job.userIds), job.message);
}

/** `push.deliver`: one slice of deliveries, or a retry. */
export async function handlePushDeliver(env: Env, job: PushDeliverJob): Promise<DeliverySummary> {
  const db = primaryDb(env.DB);
  return deliver(env, db, await devicesOfTargets(db, job.targets), job.message, job.attempt);
}

/** `push.receipts`: deletes the devices whose Expo receipt says DeviceNotRegistered. */
export async function handlePushReceipts(env: Env, job: PushReceiptsJob): Promise<{ dead: number }> {
  const deadTickets = new Set(
    await expoDeadTickets(
      getConfig(env).push.expo,
      job.receipts.map((r) => r.ticket),
    ),
  );
  const ids = job.receipts.filter((r) => deadTickets.has(r.ticket)).map((r) => r.deviceId);
  await deleteDevices(primaryDb(env.DB), ids);
  return { dead: ids.length };
}

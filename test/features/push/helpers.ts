/** Push test helpers: provider-shaped tokens, device registration, a queue that records, stand-in logs. */
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import worker from "../../../src/index";
import type { Job } from "../../../src/jobs";
import { api, standinRequests, type TestUser } from "../../helpers/api";
import { patchRoomEnv } from "../chat/helpers";

const rand = (bytes = 12) =>
  [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");

/** Stand-in behaviours are chosen by token (see test/standins/fcm.ts, apns.ts, expo.ts). */
export type Kind = "ok" | "dead" | "flaky" | "throttled";

/** FCM also has `invalid`: FCM says it is not a valid registration token. */
export const fcmToken = (kind: Kind | "invalid" = "ok") =>
  `${kind === "ok" ? "tok" : kind}-${rand()}:APA91b${rand(20)}`;
/** APNs tokens are hex: `dead…` is answered 410, `fa11…` fails once with 503. */
export const apnsToken = (kind: Exclude<Kind, "throttled"> = "ok") =>
  `${{ ok: "c0de", dead: "dead", flaky: "fa11" }[kind]}${rand(30)}`;
/** Expo also has `gone`: accepted (ticket ok), but the receipt later says DeviceNotRegistered. */
export const expoToken = (kind: Kind | "gone" = "ok") =>
  `ExponentPushToken[${kind === "ok" ? "tok" : kind}-${rand(8)}]`;

export interface DeviceJson {
  id: string;
  token: string;
  platform: "ios" | "android" | "web";
  provider: "fcm" | "apns" | "expo";
  createdAt: string;
  updatedAt: string;
}

/** Registers a device for `user` and returns it (expects 201). */
export async function registerDevice(
  user: TestUser,
  token: string,
  provider: "fcm" | "apns" | "expo",
  platform: "ios" | "android" | "web" = provider === "fcm" ? "android" : "ios",
): Promise<DeviceJson> {
  const res = await api<DeviceJson>("/v1/devices", { token: user.accessToken, body: { token, platform, provider } });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

export async function listDevices(user: TestUser): Promise<DeviceJson[]> {
  const res = await api<{ items: DeviceJson[] }>("/v1/devices?limit=200", { token: user.accessToken });
  expect(res.status, res.text).toBe(200);
  return res.body.items;
}

export interface QueuedJob {
  body: Job;
  delaySeconds?: number;
}

/**
 * The Worker's env with a JOBS queue that records instead of delivering, so a test sees exactly
 * which retries a handler queues (and runs them itself, without waiting for the backoff).
 */
export function recordingEnv(overrides: Record<string, string> = {}): { env: Env; queued: QueuedJob[] } {
  const queued: QueuedJob[] = [];
  const JOBS = {
    async send(body: Job, opts?: { delaySeconds?: number }) {
      queued.push({ body, ...(opts?.delaySeconds !== undefined ? { delaySeconds: opts.delaySeconds } : {}) });
    },
    async sendBatch(msgs: Iterable<{ body: Job; delaySeconds?: number }>) {
      for (const m of msgs)
        queued.push({ body: m.body, ...(m.delaySeconds !== undefined ? { delaySeconds: m.delaySeconds } : {}) });
    },
  };
  const props: PropertyDescriptorMap = { JOBS: { value: JOBS } };
  for (const [k, v] of Object.entries(overrides)) props[k] = { value: v };
  return { env: Object.create(env, props) as Env, queued };
}

/** The queued jobs of one type, in order. */
export const jobsOf = <T extends Job["type"]>(queued: QueuedJob[], type: T) =>
  queued.filter((q) => q.body.type === type) as (QueuedJob & { body: Extract<Job, { type: T }> })[];

export type StandinRequest = Awaited<ReturnType<typeof standinRequests>>[number];

/** Requests the stand-ins got under `prefix` whose path or body mentions `token`. */
export async function requestsFor(prefix: string, token: string): Promise<StandinRequest[]> {
  return (await standinRequests(prefix)).filter(
    (r) => r.path.includes(token) || r.body.includes(JSON.stringify(token).slice(1, -1)),
  );
}

/**
 * One request through the Worker with a JOBS queue that records (see `recordingEnv`): the test
 * sees exactly what the request enqueued instead of waiting for the background consumer.
 */
export async function callRecording(
  recording: Env,
  path: string,
  init: { method?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {},
) {
  const headers = new Headers(init.headers);
  if (init.token) headers.set("authorization", `Bearer ${init.token}`);
  if (init.body !== undefined) headers.set("content-type", "application/json");
  const req = new Request(`https://outpost.test${path}`, {
    method: init.method ?? (init.body !== undefined ? "POST" : "GET"),
    headers,
    body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
  });
  const ctx = createExecutionContext();
  const res = await worker.fetch(req, recording, ctx as ExecutionContext);
  await waitOnExecutionContext(ctx);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/**
 * Runs queued jobs through the Worker's own queue handler (as the Queue would deliver them) and
 * returns once they are done; every job must be acknowledged. Jobs they queue in turn go to
 * `recording`'s queue, so a test can run those next.
 */
export async function runJobs(recording: Env, jobs: QueuedJob[]): Promise<void> {
  if (jobs.length === 0) return;
  const batch = createMessageBatch<Job>(
    "outpost-jobs",
    jobs.map((j, i) => ({ id: `job-${i}-${crypto.randomUUID()}`, timestamp: new Date(), attempts: 1, body: j.body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, recording);
  const result = await getQueueResult(batch, ctx);
  expect(result.explicitAcks).toHaveLength(jobs.length);
  expect(result.retryMessages).toEqual([]);
}

type ChatJob = Extract<Job, { type: "chat.message" }>;

/**
 * Gives a chat room (inside its object) a JOBS queue that records, so a test sees the push jobs
 * the room enqueues and runs them itself (`runJobs`) instead of waiting for the background
 * consumer. Jobs are recorded however the room sends them (`send` or `sendBatch`).
 */
export async function recordRoomJobs(
  roomId: string,
): Promise<{ queued: QueuedJob[]; chatJob(seq: number, timeoutMs?: number): Promise<ChatJob> }> {
  const queued: QueuedJob[] = [];
  let arrived: (() => void) | null = null;
  const record = (body: Job, delaySeconds?: number) => {
    queued.push({ body, ...(delaySeconds !== undefined ? { delaySeconds } : {}) });
    arrived?.();
  };
  const JOBS = {
    async send(body: Job, opts?: { delaySeconds?: number }) {
      record(body, opts?.delaySeconds);
    },
    async sendBatch(msgs: Iterable<{ body: Job; delaySeconds?: number }>, opts?: { delaySeconds?: number }) {
      for (const m of msgs) record(m.body, m.delaySeconds ?? opts?.delaySeconds);
    },
  };
  await patchRoomEnv(roomId, { JOBS: JOBS as unknown as Queue });
  const find = (seq: number) =>
    queued.find((q): q is QueuedJob & { body: ChatJob } => q.body.type === "chat.message" && q.body.seq === seq)?.body;
  return {
    queued,
    /** The chat.message job for `seq`, as soon as the room enqueued it (the timeout only bounds the wait). */
    async chatJob(seq, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const job = find(seq);
        if (job) return job;
        const left = deadline - Date.now();
        if (left <= 0)
          throw new Error(
            `the room enqueued no chat.message job for seq ${seq} within ${timeoutMs} ms; ` +
              `queued: ${JSON.stringify(queued)}`,
          );
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          arrived = () => {
            clearTimeout(t);
            resolve();
          };
        });
        arrived = null;
      }
    },
  };
}

/** Decodes a JWT's header and claims without verifying (the stand-in verifies). */
export function decodeJwt(jwt: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  const part = (s: string) => JSON.parse(atob(s.replaceAll("-", "+").replaceAll("_", "/"))) as Record<string, unknown>;
  const [h, c] = jwt.split(".");
  return { header: part(h!), claims: part(c!) };
}

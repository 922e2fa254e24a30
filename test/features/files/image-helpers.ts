/** Calling the app with a changed env (counting Images/R2 bindings, a recording queue) and running the image job. */
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { handleQueue, type Job } from "../../../src/jobs";
import { app } from "../../../src/router";
import { freshIp } from "../../helpers/api";

export interface Counts {
  transforms: number;
  infos: number;
  r2Gets: number;
  r2Puts: number;
  r2Heads: number;
}

/** The test env with IMAGES and MEDIA wrapped to count calls, and JOBS recording what is sent. */
export function countingEnv(): { env: Env; counts: Counts; jobs: Job[] } {
  const counts: Counts = { transforms: 0, infos: 0, r2Gets: 0, r2Puts: 0, r2Heads: 0 };
  const jobs: Job[] = [];
  const images = env.IMAGES;
  const media = env.MEDIA;
  const IMAGES = {
    input: (s: ReadableStream<Uint8Array>, o?: ImageInputOptions) => {
      counts.transforms++;
      return images.input(s, o);
    },
    info: (s: ReadableStream<Uint8Array>, o?: ImageInputOptions) => {
      counts.infos++;
      return images.info(s, o);
    },
  };
  const MEDIA = {
    get: (k: string, o?: R2GetOptions) => {
      counts.r2Gets++;
      return media.get(k, o);
    },
    put: (k: string, v: Parameters<R2Bucket["put"]>[1], o?: R2PutOptions) => {
      counts.r2Puts++;
      return media.put(k, v, o);
    },
    head: (k: string) => {
      counts.r2Heads++;
      return media.head(k);
    },
    delete: (k: string | string[]) => media.delete(k),
    list: (o?: R2ListOptions) => media.list(o),
    createMultipartUpload: (k: string, o?: R2MultipartOptions) => media.createMultipartUpload(k, o),
    resumeMultipartUpload: (k: string, id: string) => media.resumeMultipartUpload(k, id),
  };
  const JOBS = {
    async send(body: Job) {
      jobs.push(body);
    },
    async sendBatch(msgs: Iterable<{ body: Job }>) {
      for (const m of msgs) jobs.push(m.body);
    },
  };
  const wrapped = Object.create(env, {
    IMAGES: { value: IMAGES },
    MEDIA: { value: MEDIA },
    JOBS: { value: JOBS },
  }) as Env;
  return { env: wrapped, counts, jobs };
}

export const resetCounts = (c: Counts) =>
  Object.assign(c, { transforms: 0, infos: 0, r2Gets: 0, r2Puts: 0, r2Heads: 0 });

export interface Call {
  status: number;
  headers: Headers;
  bytes: Uint8Array;
  json: any;
}

/** One request through the app with `e`; waits for work left in waitUntil. */
export async function call(
  e: Env,
  path: string,
  init: {
    method?: string;
    token?: string | null;
    headers?: Record<string, string>;
    raw?: BodyInit;
    body?: unknown;
  } = {},
): Promise<Call> {
  const headers = new Headers(init.headers);
  headers.set("cf-connecting-ip", freshIp());
  if (init.token) headers.set("authorization", `Bearer ${init.token}`);
  let body = init.raw;
  if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers.set("content-type", "application/json");
  }
  const ctx = createExecutionContext();
  const res = await app.fetch(
    new Request(`https://outpost.test${path}`, {
      method: init.method ?? (body !== undefined ? "POST" : "GET"),
      headers,
      body,
    }),
    e,
    ctx,
  );
  const bytes = new Uint8Array(await res.arrayBuffer());
  await waitOnExecutionContext(ctx);
  const ct = res.headers.get("content-type") ?? "";
  return {
    status: res.status,
    headers: res.headers,
    bytes,
    json: ct.includes("json") && bytes.length ? JSON.parse(new TextDecoder().decode(bytes)) : null,
  };
}

/** Delivers `jobs` to the Worker's queue handler (as the Queue would); every one must be acknowledged. */
export async function runJobs(e: Env, jobs: Job[]): Promise<void> {
  const batch = createMessageBatch<Job>(
    "outpost-jobs",
    jobs.map((body, i) => ({ id: `img-${i}-${crypto.randomUUID()}`, timestamp: new Date(), attempts: 1, body })),
  );
  const ctx = createExecutionContext();
  await handleQueue(batch, e);
  const result = await getQueueResult(batch, ctx);
  expect(result.explicitAcks).toHaveLength(jobs.length);
  expect(result.retryMessages).toEqual([]);
}

/** Uploads `bytes` with POST /v1/files through `e`; returns the file JSON (throws unless 201). */
export async function upload(
  e: Env,
  token: string,
  bytes: Uint8Array,
  type: string,
  visibility: "public" | "private" = "public",
  name = "photo",
) {
  const res = await call(e, `/v1/files?name=${name}&visibility=${visibility}`, {
    token,
    raw: bytes,
    headers: { "content-type": type },
  });
  if (res.status !== 201) throw new Error(`upload failed: ${res.status} ${new TextDecoder().decode(res.bytes)}`);
  return res.json as {
    id: string;
    size: number;
    sha256: string | null;
    width: number | null;
    height: number | null;
    placeholder: string | null;
    url: string;
  };
}

/** tus creation through `e`; `url` is the upload's path. */
export async function tusCreate(e: Env, token: string, length: number, meta: Record<string, string>) {
  const md = Object.entries(meta)
    .map(([k, v]) => `${k} ${btoa(v)}`)
    .join(",");
  const res = await call(e, "/v1/uploads", {
    method: "POST",
    token,
    headers: { "tus-resumable": "1.0.0", "upload-length": String(length), "upload-metadata": md },
  });
  const loc = res.headers.get("location");
  return { status: res.status, url: loc ? new URL(loc).pathname : "", headers: res.headers };
}

/** One tus PATCH through `e`. */
export function tusPatch(e: Env, token: string, url: string, offset: number, bytes: Uint8Array) {
  return call(e, url, {
    method: "PATCH",
    token,
    raw: bytes,
    headers: {
      "tus-resumable": "1.0.0",
      "upload-offset": String(offset),
      "content-type": "application/offset+octet-stream",
    },
  });
}

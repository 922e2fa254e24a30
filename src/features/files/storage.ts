/**
 * Streaming between request bodies and R2. Bytes pass through a `Meter` (size limit, SHA-256)
 * and into R2 either as one put of known length or as a multipart upload in equal parts; nothing
 * holds more than one part in memory.
 */
import { AppError } from "../../errors";
import { hex } from "../../lib/crypto";

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1 && chunks[0]!.byteLength === total) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * A pass-through stage that counts bytes, rejects more than `maxBytes` (413 `payload_too_large`,
 * or the error `over` makes, e.g. `quota_exceeded`) and, with `hash`, computes the SHA-256
 * incrementally. The error it raised is kept in `error`, because R2 reports a failed source
 * stream with its own error.
 */
export class Meter {
  bytes = 0;
  /** The source ended normally (everything it sent passed). */
  finished = false;
  error: AppError | null = null;
  readonly stream: TransformStream<Uint8Array, Uint8Array>;
  private readonly digest: DigestStream | null;

  constructor(
    maxBytes: number,
    hash: boolean,
    over: (bytes: number) => AppError = () =>
      new AppError("payload_too_large", `The file is larger than ${maxBytes} bytes.`),
  ) {
    this.digest = hash ? new crypto.DigestStream("SHA-256") : null;
    const writer = this.digest?.getWriter() ?? null;
    this.stream = new TransformStream<Uint8Array, Uint8Array>({
      transform: async (chunk, ctl) => {
        this.bytes += chunk.byteLength;
        if (this.bytes > maxBytes) {
          this.error = over(this.bytes);
          throw this.error;
        }
        if (writer) await writer.write(chunk);
        ctl.enqueue(chunk);
      },
      flush: async () => {
        if (writer) await writer.close();
        this.finished = true;
      },
    });
  }

  /** Hex SHA-256 of the bytes that passed (after the stream finished). */
  async sha256(): Promise<string> {
    if (!this.digest) throw new Error("Meter created without hashing");
    return hex(await this.digest.digest);
  }
}

/** Collects chunks and cuts them into parts of exactly `partSize` bytes. */
export class PartBuffer {
  private chunks: Uint8Array[] = [];
  size = 0;
  constructor(readonly partSize: number) {}

  /** Adds a chunk; returns the full parts it completed. */
  push(chunk: Uint8Array): Uint8Array[] {
    if (chunk.byteLength === 0) return [];
    this.chunks.push(chunk);
    this.size += chunk.byteLength;
    const parts: Uint8Array[] = [];
    while (this.size >= this.partSize) parts.push(this.take(this.partSize));
    return parts;
  }

  /** Removes and returns the first `n` buffered bytes (all by default). */
  take(n = this.size): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.byteLength, n - at);
      out.set(c.subarray(0, k), at);
      at += k;
      if (k === c.byteLength) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.size -= n;
    return out;
  }
}

/** Reads a stream chunk by chunk. */
export async function* chunksOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** Reads at least `n` bytes (fewer if the stream ends); `rest` is null when the stream ended. */
export async function splitHead(
  stream: ReadableStream<Uint8Array>,
  n: number,
): Promise<{ head: Uint8Array; rest: ReadableStream<Uint8Array> | null }> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let ended = false;
  while (size < n) {
    const { done, value } = await reader.read();
    if (done) {
      ended = true;
      break;
    }
    chunks.push(value);
    size += value.byteLength;
  }
  reader.releaseLock();
  return { head: concat(chunks, size), rest: ended ? null : stream };
}

/** `head` followed by `rest`, as one stream. */
export function prepend(head: Uint8Array | null, rest: ReadableStream<Uint8Array> | null): ReadableStream<Uint8Array> {
  const it = rest ? chunksOf(rest) : null;
  let first = head?.byteLength ? head : null;
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      if (first) {
        ctl.enqueue(first);
        first = null;
        return;
      }
      const next = it ? await it.next() : { done: true as const, value: undefined };
      if (next.done) ctl.close();
      else ctl.enqueue(next.value);
    },
    async cancel(reason) {
      await it?.return(undefined);
      await rest?.cancel(reason).catch(() => {});
    },
  });
}

/**
 * `src` piped through `t`. The pipe's own failure is already reported by `t.readable`, so its
 * promise is handled here (workerd logs unhandled ones, e.g. after an early 415).
 */
export function through<T, U>(
  src: ReadableStream<T>,
  t: { writable: WritableStream<T>; readable: ReadableStream<U> },
): ReadableStream<U> {
  src.pipeTo(t.writable).catch(() => {});
  return t.readable;
}

/** Puts a stream whose length is known up front (one R2 put; R2 needs the length of a streamed body). */
export async function putKnownLength(
  bucket: R2Bucket,
  key: string,
  stream: ReadableStream<Uint8Array>,
  length: number,
  options: R2PutOptions,
): Promise<void> {
  await bucket.put(key, through(stream, new FixedLengthStream(length)), options);
}

/**
 * Puts a stream of unknown length: one put when it fits in a part, otherwise an R2 multipart
 * upload of equal `partSize` parts (R2 requires equal parts) with a shorter last part.
 */
export async function putUnknownLength(
  bucket: R2Bucket,
  key: string,
  stream: ReadableStream<Uint8Array>,
  partSize: number,
  options: R2PutOptions,
): Promise<void> {
  const buf = new PartBuffer(partSize);
  let mp: R2MultipartUpload | null = null;
  const parts: R2UploadedPart[] = [];
  try {
    for await (const chunk of chunksOf(stream)) {
      for (const part of buf.push(chunk)) {
        mp ??= await bucket.createMultipartUpload(key, {
          httpMetadata: options.httpMetadata,
          customMetadata: options.customMetadata,
        });
        parts.push(await mp.uploadPart(parts.length + 1, part));
      }
    }
    const rest = buf.take();
    if (!mp) {
      await bucket.put(key, rest, options);
      return;
    }
    if (rest.byteLength) parts.push(await mp.uploadPart(parts.length + 1, rest));
    await mp.complete(parts);
  } catch (e) {
    await mp?.abort().catch(() => {});
    throw e;
  }
}

/**
 * Files: small uploads in one request, large ones resumable with tus-js-client (its resume URLs
 * kept in the client's storage, so an upload continues after the app restarts), metadata, signed
 * URLs cached until they expire, thumbnail URLs.
 */
import { Upload, type UrlStorage } from "tus-js-client";
import { type Core, enc } from "./core.js";
import { isRetryable, OutpostError, signedOut } from "./errors.js";
import { type Pages, pages } from "./pages.js";
import { readJson, writeJson } from "./storage.js";
import type { FileInfo, Page } from "./types.js";
import { backoff, noop, serial, uuid } from "./util.js";

/** What can be uploaded: bytes, a Blob/File, or (React Native / Expo) a local file `{ uri }`. */
export type UploadInput =
  | Blob
  | Uint8Array
  | ArrayBuffer
  | { uri: string; name?: string | null; type?: string | null; size?: number | null };

export interface UploadOptions {
  name?: string;
  contentType?: string;
  visibility?: "public" | "private";
  /**
   * The team the file belongs to (you must be its member, admin or owner). Team files are uploaded in one
   * request (never resumable), so they are limited to the server's single-upload size.
   */
  teamId?: string;
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
  /**
   * Force resumable (true) or single-request (false); default: resumable above `largeUploadBytes` or when the size is
   * unknown.
   */
  resumable?: boolean;
  chunkSize?: number;
  /** What identifies this upload across restarts (default: derived from name, type, size and content/uri). */
  fingerprint?: string;
}

export type ThumbPreset = "sm" | "md" | "sq";

type PreviousUpload = Awaited<ReturnType<UrlStorage["findAllUploads"]>>[number];

export class Files {
  private readonly cache = new Map<string, { url: string; exp: number }>();
  private readonly inflight = new Map<string, Promise<{ url: string; exp: number }>>();
  private readonly io = serial();
  /** Uploads under way, with the user who started each. */
  private readonly running = new Set<{ user: string | null; stop(e: OutpostError): void }>();

  constructor(
    private readonly c: Core,
    private readonly o: { largeUploadBytes: number; chunkSize: number },
  ) {}

  get(id: string): Promise<FileInfo> {
    return this.c.http.json(`/v1/files/${enc(id)}`);
  }
  /**
   * The caller's files outside teams, or with `teamId` that team's files (any member): `await` → the first page,
   * `for await` → every page, `.all()`.
   */
  list(q: { limit?: number; cursor?: string; teamId?: string } = {}): Pages<FileInfo> {
    return pages(
      (cursor) =>
        this.c.http.json<Page<FileInfo>>("/v1/files", { query: { limit: q.limit, cursor, teamId: q.teamId } }),
      q.cursor,
    );
  }
  async delete(id: string): Promise<void> {
    for (const k of this.cache.keys()) if (k.startsWith(`${id}:`)) this.cache.delete(k);
    await this.c.http.send(`/v1/files/${enc(id)}`, { method: "DELETE" });
  }

  /** The content URL (public files work as is; private ones need `signedUrl`). `thumb`: an image preset. */
  url(id: string, thumb?: ThumbPreset): string {
    return this.c.http.url(`/v1/files/${enc(id)}/content`, { thumb });
  }

  /** A resized image: `sm` 160 px, `md` 640 px (long side), `sq` 160×160 cropped. */
  thumbnailUrl(id: string, preset: ThumbPreset): string {
    return this.url(id, preset);
  }

  /** A URL that works without a token until it expires; the same one is handed out until 60 s before that. */
  async signedUrl(id: string, o: { expiresIn?: number; thumb?: ThumbPreset } = {}): Promise<string> {
    const key = `${id}:${o.expiresIn ?? ""}`;
    let hit = this.cache.get(key);
    if (!hit || hit.exp - this.c.now() < 60_000) {
      let p = this.inflight.get(key);
      if (!p) {
        p = this.c.http
          .json<{ url: string; expiresAt: string }>(`/v1/files/${enc(id)}/signed-url`, {
            method: "POST",
            body: o.expiresIn ? { expiresIn: o.expiresIn } : {},
            idempotencyKey: uuid(),
          })
          .then((r) => {
            const v = { url: r.url, exp: Date.parse(r.expiresAt) };
            this.cache.set(key, v);
            return v;
          })
          .finally(() => this.inflight.delete(key));
        this.inflight.set(key, p);
      }
      hit = await p;
    }
    return o.thumb ? `${hit.url}${hit.url.includes("?") ? "&" : "?"}thumb=${o.thumb}` : hit.url;
  }

  /**
   * @internal The signed-in user changed: uploads the previous user started stop and reject with
   * `signed_out` (never finished under the next user's token). Their resumable uploads are
   * forgotten (`drop`, an explicit sign-out) or kept for that user to resume after signing in again.
   */
  async switchUser(from: string | null, to: string | null, drop: boolean): Promise<void> {
    const err = signedOut("upload");
    for (const r of [...this.running]) if (r.user !== to) r.stop(err);
    this.cache.clear();
    if (!drop || !from) return;
    const key = `${this.c.prefix}uploads`;
    await this.io(async () => {
      const m = await readJson<{ [k: string]: PreviousUpload }>(this.c.storage, key, {});
      for (const k of Object.keys(m)) if (k.startsWith(`outpost:${from}:`)) delete m[k];
      await writeJson(this.c.storage, key, Object.keys(m).length ? m : undefined);
    });
  }

  /** Uploads a file; resolves with it once stored. Large files go resumable (tus) and survive restarts. */
  async upload(input: UploadInput, o: UploadOptions = {}): Promise<FileInfo> {
    const uri = "uri" in input && typeof input.uri === "string" ? input : null;
    const name = o.name ?? uri?.name ?? (input as { name?: string }).name ?? "file";
    const type = o.contentType ?? uri?.type ?? ((input as Blob).type || "application/octet-stream");
    const size = uri
      ? (uri.size ?? undefined)
      : input instanceof ArrayBuffer
        ? input.byteLength
        : "byteLength" in input
          ? input.byteLength
          : (input as Blob).size;
    const resumable = o.resumable ?? (size === undefined || size > this.o.largeUploadBytes);
    if (!resumable)
      return this.single(
        uri ? await (await fetch(uri.uri)).blob() : (input as Blob | Uint8Array | ArrayBuffer),
        name,
        type,
        o,
      );
    return this.tus(input, name, type, size, o);
  }

  private async single(
    body: Blob | Uint8Array | ArrayBuffer,
    name: string,
    type: string,
    o: UploadOptions,
  ): Promise<FileInfo> {
    const key = uuid();
    await this.c.auth.ready;
    const user = this.c.auth.user?.id ?? null;
    let stopped: OutpostError | null = null;
    const ctl = new AbortController();
    const run = {
      user,
      stop: (e: OutpostError) => {
        stopped = e;
        ctl.abort();
      },
    };
    o.signal?.addEventListener("abort", () => ctl.abort());
    this.running.add(run);
    try {
      return await this.singleTries(body, name, type, o, key, ctl.signal, () => stopped);
    } finally {
      this.running.delete(run);
    }
  }

  private async singleTries(
    body: Blob | Uint8Array | ArrayBuffer,
    name: string,
    type: string,
    o: UploadOptions,
    key: string,
    signal: AbortSignal,
    stopped: () => OutpostError | null,
  ): Promise<FileInfo> {
    for (let attempt = 0; ; attempt++) {
      try {
        const f = await this.c.http.json<FileInfo>("/v1/files", {
          method: "POST",
          query: { name, visibility: o.visibility, teamId: o.teamId },
          raw: body,
          contentType: type,
          idempotencyKey: key,
          signal,
        });
        const size = isBlob(body) ? body.size : body.byteLength;
        o.onProgress?.(size, size);
        return f;
      } catch (e) {
        const why = stopped();
        if (why) throw why;
        if (attempt >= 3 || !isRetryable(e) || o.signal?.aborted) throw e;
        await new Promise((r) => setTimeout(r, backoff(attempt, 500, 5000)));
      }
    }
  }

  private async tus(
    input: UploadInput,
    name: string,
    type: string,
    size: number | undefined,
    o: UploadOptions,
  ): Promise<FileInfo> {
    const { auth, http } = this.c;
    await auth.ready;
    const user = auth.user?.id;
    if (!user) throw new OutpostError(401, "unauthorized", "Sign in before uploading.");
    const fp = `outpost:${user}:${o.fingerprint ?? (await fingerprint(input, name, type, size))}`;
    // tus-js-client's Node build reads Buffers; browsers and React Native (even with a Buffer polyfill) read Blobs
    // and { uri }.
    const g = globalThis as {
      Buffer?: { from(b: ArrayBufferLike, o: number, l: number): Uint8Array };
      process?: { versions?: { node?: string } };
    };
    const B = g.process?.versions?.node ? g.Buffer : undefined;
    let file: unknown = input;
    if (input instanceof ArrayBuffer || input instanceof Uint8Array) {
      const u8 = input instanceof Uint8Array ? input : new Uint8Array(input);
      file = B ? B.from(u8.buffer, u8.byteOffset, u8.byteLength) : new Blob([u8 as Uint8Array<ArrayBuffer>]);
    } else if (B && isBlob(input)) {
      const buf = await input.arrayBuffer();
      file = B.from(buf, 0, buf.byteLength);
    }
    return new Promise<FileInfo>((resolve, reject) => {
      let fileId: string | null = null;
      const run = {
        user,
        stop: (e: OutpostError) => {
          // Kept on the server: the same user resumes it after signing in again.
          done();
          void up.abort(false);
          reject(e);
        },
      };
      this.running.add(run);
      const done = () => this.running.delete(run);
      const up = new Upload(file as Blob, {
        endpoint: `${http.base}/v1/uploads`,
        chunkSize: o.chunkSize ?? this.o.chunkSize,
        retryDelays: [0, 1000, 3000, 5000, 10_000, 20_000],
        metadata: {
          filename: name,
          filetype: type,
          visibility: o.visibility ?? "private",
          ...(o.teamId ? { teamId: o.teamId } : {}),
        },
        fingerprint: async () => fp,
        urlStorage: this.urlStorage(),
        storeFingerprintForResuming: true,
        removeFingerprintOnSuccess: true,
        onBeforeRequest: async (req) => {
          if (auth.user?.id !== user) throw signedOut("upload");
          const token = await auth.token();
          if (token) req.setHeader("Authorization", `Bearer ${token}`);
          const check = await http.appCheck?.get();
          if (check) req.setHeader("Outpost-App-Check", check);
        },
        onAfterResponse: (_req, res) => {
          fileId = res.getHeader("Outpost-File-Id") ?? fileId;
        },
        onShouldRetry: (err) => {
          if (auth.user?.id !== user) return false;
          const status = err.originalResponse?.getStatus() ?? 0;
          // An expired token: refresh (onBeforeRequest waits for it) and try again.
          if (status === 401) {
            void auth.refresh().catch(noop);
            return auth.session !== null;
          }
          return status === 0 || status >= 500 || status === 409 || status === 423 || status === 429;
        },
        ...(o.onProgress && { onProgress: o.onProgress }),
        onSuccess: () => {
          done();
          if (!fileId) return reject(new OutpostError(0, "internal", "The upload finished without a file id."));
          this.get(fileId).then(resolve, reject);
        },
        onError: (e) => {
          done();
          const status =
            (e as { originalResponse?: { getStatus(): number } | null }).originalResponse?.getStatus() ?? 0;
          reject(
            e instanceof OutpostError
              ? e
              : new OutpostError(status, status ? `http_${status}` : "network_error", e.message, { cause: e }),
          );
        },
      });
      o.signal?.addEventListener("abort", () => {
        // Keep the upload on the server: the next upload of the same file resumes it.
        void up.abort(false);
        done();
        reject(new OutpostError(0, "aborted", "The upload was aborted; uploading the same file again resumes it."));
      });
      void up.findPreviousUploads().then((prev) => {
        if (prev[0]) up.resumeFromPreviousUpload(prev[0]);
        if (!o.signal?.aborted) up.start();
      }, reject);
    });
  }

  /** tus-js-client's resume URLs, kept in the client's storage. */
  private urlStorage(): UrlStorage {
    const key = `${this.c.prefix}uploads`;
    const read = () => readJson<{ [k: string]: PreviousUpload }>(this.c.storage, key, {});
    const edit = (f: (m: { [k: string]: PreviousUpload }) => void) =>
      this.io(async () => {
        const m = await read();
        f(m);
        await writeJson(this.c.storage, key, Object.keys(m).length ? m : undefined);
      });
    return {
      findAllUploads: async () => Object.values(await read()),
      findUploadsByFingerprint: async (fp) =>
        Object.entries(await read())
          .filter(([k]) => k.startsWith(`${fp}::`))
          .map(([, u]) => u),
      removeUpload: (k) => edit((m) => delete m[k]),
      addUpload: async (fp, u) => {
        const k = `${fp}::${uuid()}`;
        await edit((m) => {
          m[k] = { ...u, urlStorageKey: k };
        });
        return k;
      },
    };
  }
}

const isBlob = (x: unknown): x is Blob => typeof Blob !== "undefined" && x instanceof Blob;

/** Identifies a file across restarts: its uri, or (for bytes) a hash of its first and last 64 KiB. */
async function fingerprint(input: UploadInput, name: string, type: string, size: number | undefined): Promise<string> {
  let tag: string;
  if ("uri" in input && typeof input.uri === "string") tag = input.uri;
  else if (isBlob(input)) tag = String((input as { lastModified?: number }).lastModified ?? "");
  else {
    const u8 = input instanceof Uint8Array ? input : new Uint8Array(input as ArrayBuffer);
    let h = 0x811c9dc5;
    const hash = (from: number, to: number) => {
      for (let i = from; i < to; i++) h = Math.imul(h ^ (u8[i] as number), 16_777_619);
    };
    hash(0, Math.min(65_536, u8.length));
    hash(Math.max(65_536, u8.length - 65_536), u8.length);
    tag = (h >>> 0).toString(16);
  }
  return [name, type, size ?? "", tag].join(":");
}

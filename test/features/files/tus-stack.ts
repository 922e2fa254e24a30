/**
 * A tus-js-client HTTP stack on `fetch` into the Worker (workerd has no XMLHttpRequest). The
 * client itself is unmodified; `interruptPatch` makes one PATCH break off midway, like a phone
 * losing its connection.
 */
import { exports } from "cloudflare:workers";
import type { HttpRequest, HttpResponse, HttpStack, PreviousUpload, UrlStorage } from "tus-js-client";

class FetchResponse implements HttpResponse {
  constructor(
    private readonly status: number,
    private readonly headers: Headers,
    private readonly body: string,
  ) {}
  getStatus() {
    return this.status;
  }
  getHeader(name: string) {
    return this.headers.get(name) ?? undefined;
  }
  getBody() {
    return this.body;
  }
  getUnderlyingObject() {
    return this.headers;
  }
}

class FetchRequest implements HttpRequest {
  private readonly headers: Record<string, string> = {};
  private onProgress: (bytes: number) => void = () => {};
  constructor(
    private readonly method: string,
    private readonly url: string,
    private readonly stack: FetchStack,
  ) {}
  getMethod() {
    return this.method;
  }
  getURL() {
    return this.url;
  }
  setHeader(name: string, value: string) {
    this.headers[name] = value;
  }
  getHeader(name: string) {
    return this.headers[name];
  }
  setProgressHandler(handler: (bytes: number) => void) {
    this.onProgress = handler;
  }
  async send(body: Blob | null): Promise<HttpResponse> {
    this.stack.log.push(`${this.method} ${this.headers["Upload-Offset"] ?? ""}`.trim());
    const cut = this.method === "PATCH" && body ? this.stack.takeInterruption() : null;
    if (cut !== null && body) {
      const bytes = new Uint8Array(await body.arrayBuffer()).subarray(0, cut);
      const half = Math.floor(bytes.length / 2);
      const pieces = [bytes.subarray(0, half), bytes.subarray(half)];
      const stream = new ReadableStream<Uint8Array>({
        pull(ctl) {
          const next = pieces.shift();
          if (next) ctl.enqueue(next);
          else ctl.error(new Error("connection reset"));
        },
      });
      await exports.default
        .fetch(new Request(this.url, { method: this.method, headers: this.headers, body: stream }))
        .then((r) => r.arrayBuffer())
        .catch(() => {});
      throw new Error("network connection lost");
    }
    const res = await exports.default.fetch(
      new Request(this.url, { method: this.method, headers: this.headers, body }),
    );
    if (body) this.onProgress(body.size);
    return new FetchResponse(res.status, res.headers, await res.text());
  }
  async abort() {}
  getUnderlyingObject() {
    return null;
  }
}

export class FetchStack implements HttpStack {
  readonly log: string[] = [];
  private interruptions: number[] = [];
  /** The next PATCH sends only its first `bytes` bytes, then the connection breaks. */
  interruptPatch(bytes: number) {
    this.interruptions.push(bytes);
  }
  takeInterruption(): number | null {
    return this.interruptions.shift() ?? null;
  }
  createRequest(method: string, url: string): HttpRequest {
    return new FetchRequest(method, url, this);
  }
  getName() {
    return "FetchStack";
  }
}

/** Upload URLs remembered in memory, as a phone's storage would keep them across app launches. */
export class MemoryUrlStorage implements UrlStorage {
  private readonly items = new Map<string, { fingerprint: string; upload: PreviousUpload }>();
  private n = 0;
  async findAllUploads() {
    return [...this.items.values()].map((i) => i.upload);
  }
  async findUploadsByFingerprint(fingerprint: string) {
    return [...this.items.entries()]
      .filter(([, i]) => i.fingerprint === fingerprint)
      .map(([key, i]) => ({ ...i.upload, urlStorageKey: key }));
  }
  async removeUpload(key: string) {
    this.items.delete(key);
  }
  async addUpload(fingerprint: string, upload: PreviousUpload) {
    const key = `tus::${fingerprint}::${++this.n}`;
    this.items.set(key, { fingerprint, upload: { ...upload, urlStorageKey: key } });
    return key;
  }
}

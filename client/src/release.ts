/** `client.config` (remote config: get, refresh, watch) and `client.links` (short links); see docs/release.md. */
import type { Core } from "./core.js";
import { enc } from "./core.js";
import { type Pages, pages } from "./pages.js";
import { LiveSocket } from "./socket.js";
import type { Page } from "./types.js";

/** The config keys and their value types (`AppConfig` from `npm run client:types`). */
export type ConfigValues = { [key: string]: unknown };

/** The app sending `Outpost-Client: <platform>/<version>` (and `Outpost-Install-Id`) on every request. */
export interface AppInfo {
  platform: string;
  version: string;
  /** A stable id of this install: percentage rollouts of signed-out users use it. */
  installId?: string;
}

export class RemoteConfig<V extends ConfigValues = ConfigValues> {
  private values: Partial<V> = {};
  private etag: string | null = null;
  private sock: LiveSocket | null = null;
  private readonly subs = new Set<(values: Partial<V>) => void>();
  /** The config's version last seen (-1 before the first answer). */
  version = -1;

  constructor(private readonly c: Core) {}

  /** A key's value as last fetched (undefined before the first `refresh`). */
  get<K extends keyof V & string>(key: K): V[K] | undefined {
    return this.values[key];
  }

  /** Fetches `GET /v1/config` (a 304 keeps the values); resolves with them. */
  async refresh(): Promise<Partial<V>> {
    const res = await this.c.http.send("/v1/config", { headers: this.etag ? { "if-none-match": this.etag } : {} });
    if (res.status !== 304) {
      this.etag = res.headers.get("etag");
      const body = (await res.json()) as { values: V; version: number };
      this.set(body.values, body.version);
    }
    return this.values;
  }

  /** Calls `cb` with the values now (if fetched) and on every change, over the subscribe socket; returns stop. */
  watch(cb: (values: Partial<V>) => void): () => void {
    this.subs.add(cb);
    if (this.version >= 0) cb(this.values);
    // Browsers set no headers on a WebSocket: Outpost-Client goes in the query. No install id: the socket's
    // caller is signed in, and rollouts bucket a signed-in caller by user.
    const app = this.c.http.headers["outpost-client"];
    this.sock ??= new LiveSocket(this.c.sockets, {
      path: () => `/v1/config/subscribe${app ? `?client=${enc(app)}` : ""}`,
      onFrame: (f) => {
        if (f.type !== "config") return;
        this.sock?.healthy();
        this.set(f.values as V, f.version as number);
      },
    });
    this.sock.start();
    return () => {
      this.subs.delete(cb);
      if (this.subs.size === 0) this.sock?.stop();
    };
  }

  /** Stops the subscribe socket (`client.close()`). */
  close(): void {
    this.subs.clear();
    this.sock?.stop();
  }

  private set(values: V, version: number): void {
    this.values = values;
    this.version = version;
    for (const cb of this.subs) cb(values);
  }
}

export interface ShortLink {
  code: string;
  url: string;
  path: string;
  fallbackUrl: string | null;
  title: string | null;
  imageUrl: string | null;
  clicks: number;
  createdAt: string;
}

export class Links {
  constructor(private readonly c: Core) {}
  /** A short link opening `path` in the app (the store or `fallbackUrl` where it is not installed). */
  create(input: { path: string; fallbackUrl?: string; title?: string; imageUrl?: string }): Promise<ShortLink> {
    return this.c.http.json("/v1/links", { method: "POST", body: input });
  }
  /** The caller's links, newest first. */
  list(q: { limit?: number; cursor?: string } = {}): Pages<ShortLink> {
    return pages(
      (cursor) => this.c.http.json<Page<ShortLink>>("/v1/links", { query: { limit: q.limit, cursor } }),
      q.cursor,
    );
  }
  delete(code: string): Promise<void> {
    return this.c.http.json(`/v1/links/${enc(code)}`, { method: "DELETE" });
  }
  /** What a link the app was opened with (`https://…/l/<code>`, or the code) opens. */
  resolve(link: string): Promise<Pick<ShortLink, "code" | "path" | "fallbackUrl" | "title" | "imageUrl">> {
    return this.c.http.json(`/v1/links/${enc(link.replace(/^.*\/l\//, "").replace(/[?#].*$/, ""))}`, { auth: false });
  }
}

/**
 * One reconnecting WebSocket (chat rooms and live collection feeds): auth by a single-use socket
 * ticket only (an access token never goes in a URL), exponential backoff with jitter, heartbeat
 * pings, 4401 → refresh and reconnect, 4403 and 4429 → stop and tell the app, paused in the background.
 */
import type { Auth } from "./auth.js";
import { OutpostError } from "./errors.js";
import type { Http } from "./http.js";
import { backoff, noop } from "./util.js";

/**
 * An event handler property. Checked like a method (bivariantly), so the DOM's and Node 22's
 * `(this: WebSocket, ev: Event) => any` handlers fit under `strict`.
 */
type Handler<E> = { bivarianceHack(ev: E): void }["bivarianceHack"];

/** The part of the WebSocket API the SDK uses (the browser / React Native / Node 22 global fits). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason?: string }> | null;
  onerror: Handler<unknown> | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export type Frame = { type: string; [k: string]: unknown };

export interface SocketEnv {
  http: Http;
  auth: Auth;
  WebSocket: WebSocketConstructor;
  now: () => number;
  minDelayMs: number;
  maxDelayMs: number;
  heartbeatMs: number;
  online(): boolean;
}

export interface SocketHandler {
  /** Path and query of the socket route, without auth (read at each connect). */
  path(): string;
  onFrame(frame: Frame): void;
  onOpen?(): void;
  /** Return true when the handler took care of this close code (the socket then stays down). */
  onClose?(code: number): boolean;
  /** Asked after repeated failures to open: an HTTP check that throws the reason (404, 403...) or resolves. */
  probe?(): Promise<unknown>;
  /** The socket stopped for good: the server refused it (4403, 404...). */
  onHalt?(error: OutpostError): void;
}

export class LiveSocket {
  private ws: WebSocketLike | null = null;
  private wanted = false;
  private paused = false;
  private attempt = 0;
  private failsBeforeOpen = 0;
  private gen = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private hb: ReturnType<typeof setInterval> | undefined;
  private lastFrame = 0;
  open = false;

  constructor(
    private readonly env: SocketEnv,
    private readonly h: SocketHandler,
  ) {}

  /** True between `start` and `stop` (or a halt). */
  get running(): boolean {
    return this.wanted;
  }

  start(): void {
    this.wanted = true;
    this.paused = false;
    void this.connect();
  }

  stop(): void {
    this.wanted = false;
    this.down();
  }

  /** Background or offline: close the socket but remember to come back. */
  pause(): void {
    this.paused = true;
    this.down();
  }

  /** Foreground or back online: connect now (no backoff wait). */
  resume(): void {
    this.paused = false;
    this.attempt = 0;
    if (this.wanted && !this.ws) {
      clearTimeout(this.timer);
      void this.connect();
    }
  }

  /** Called by the handler once the server confirmed the session (`ready`): the backoff starts over. */
  healthy(): void {
    this.attempt = 0;
  }

  send(frame: Frame): boolean {
    if (!this.ws || !this.open) return false;
    try {
      this.ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Drops the current connection and reconnects (e.g. a heartbeat timeout). */
  reconnect(): void {
    const ws = this.ws;
    if (!ws) return;
    this.detach(ws);
    void this.closed(1006, true);
  }

  private down(): void {
    clearTimeout(this.timer);
    this.gen++;
    const ws = this.ws;
    if (ws) this.detach(ws, 1000);
  }

  private detach(ws: WebSocketLike, code?: number): void {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    this.ws = null;
    this.open = false;
    clearInterval(this.hb);
    try {
      ws.close(code);
    } catch {
      // already closed
    }
  }

  private async connect(): Promise<void> {
    if (!this.wanted || this.paused || this.ws || !this.env.online()) return;
    const gen = ++this.gen;
    let url: string;
    try {
      url = await this.url();
    } catch (e) {
      if (gen !== this.gen) return;
      if (!(e instanceof OutpostError)) return this.retry();
      if (e.status === 401 && !this.env.auth.session) return this.halt(e);
      // The ticket was refused for good (no ticket route, not allowed...): report it, never fall back to the token.
      if (e.status >= 400 && e.status < 500 && e.status !== 401 && e.status !== 408 && e.status !== 429)
        return this.halt(e);
      return this.retry(e.retryAfter !== null ? e.retryAfter * 1000 : undefined);
    }
    if (gen !== this.gen || !this.wanted || this.paused) return;
    const ws = new this.env.WebSocket(url);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.open = true;
      this.failsBeforeOpen = 0;
      this.lastFrame = this.env.now();
      clearInterval(this.hb);
      this.hb = setInterval(() => this.beat(), this.env.heartbeatMs);
      (this.hb as { unref?: () => void }).unref?.();
      this.h.onOpen?.();
    };
    ws.onmessage = (ev) => {
      this.lastFrame = this.env.now();
      let f: Frame;
      try {
        f = JSON.parse(String(ev.data)) as Frame;
      } catch {
        return;
      }
      if (f && typeof f.type === "string" && f.type !== "pong") this.h.onFrame(f);
    };
    // A refused handshake (a non-101 answer): browsers follow the error with a close, Node 22's WebSocket does not.
    ws.onerror = () => {
      if (opened || this.ws !== ws) return;
      this.detach(ws);
      void this.closed(1006, false);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.detach(ws);
      void this.closed(ev.code, opened);
    };
  }

  private beat(): void {
    if (this.env.now() - this.lastFrame > 2 * this.env.heartbeatMs) this.reconnect();
    else this.send({ type: "ping" });
  }

  private async closed(code: number, opened: boolean): Promise<void> {
    if (!this.wanted || this.paused) return;
    if (code === 4403)
      return this.halt(new OutpostError(403, "forbidden", "The server closed the socket: no longer allowed here."));
    // The user holds too many sockets on this room or feed and this was the quietest: reconnecting
    // would only close another one.
    if (code === 4429)
      return this.halt(new OutpostError(429, "rate_limited", "Too many open sockets for this user here."));
    if (this.h.onClose?.(code)) return;
    if (code === 4401) {
      // The session behind the socket ended or its token expired: refresh once; signed out → stop.
      await this.env.auth.refresh().catch(noop);
      if (!this.env.auth.session) return this.halt(new OutpostError(401, "unauthorized", "The session has ended."));
      return this.retry(0);
    }
    if (!opened && ++this.failsBeforeOpen >= 2 && this.h.probe) {
      try {
        await this.h.probe();
      } catch (e) {
        if (e instanceof OutpostError && e.status >= 400 && e.status < 500 && e.status !== 429) return this.halt(e);
      }
    }
    this.retry();
  }

  private retry(delay?: number): void {
    clearTimeout(this.timer);
    if (!this.wanted || this.paused) return;
    this.timer = setTimeout(
      () => void this.connect(),
      delay ?? backoff(this.attempt++, this.env.minDelayMs, this.env.maxDelayMs),
    );
  }

  private halt(e: OutpostError): void {
    this.wanted = false;
    this.down();
    this.h.onHalt?.(e);
  }

  /** The socket's URL with a single-use ticket; the ticket call's error is thrown as is. */
  private async url(): Promise<string> {
    const { http } = this.env;
    const base = http.base.replace(/^http/, "ws") + this.h.path();
    const t = await http.json<{ ticket: string }>("/v1/auth/socket-ticket", { method: "POST", body: {} });
    return `${base}${base.includes("?") ? "&" : "?"}ticket=${encodeURIComponent(t.ticket)}`;
  }
}

/** Live-data test harness: subscription sockets through the Worker's fetch handler, frames awaited in order. */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import { type ApiResponse, freshIp, type TestUser } from "../../helpers/api";

export interface ChangeFrame {
  type: "change";
  cursor: string;
  item: Record<string, unknown> & { id: string; version: number; deleted?: true };
}
export type LiveFrame =
  | ChangeFrame
  | { type: "ready"; cursor: string }
  | { type: "error"; code: string; message: string }
  | { type: "pong" };

/**
 * The upgrade request an app makes: token in the header (default) or as `?token=`, optional `?since=`
 * and (a team-scoped collection's one team) `?teamId=`.
 */
export async function subscribeRequest(
  name: string,
  opts: {
    token?: string | null;
    via?: "header" | "query";
    since?: string;
    teamId?: string;
    ticket?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<Response> {
  const url = new URL(`https://outpost.test/v1/collections/${name}/subscribe`);
  const headers = new Headers({ upgrade: "websocket", "cf-connecting-ip": freshIp(), ...opts.headers });
  if (opts.token && opts.via === "query") url.searchParams.set("token", opts.token);
  else if (opts.token) headers.set("authorization", `Bearer ${opts.token}`);
  if (opts.ticket) url.searchParams.set("ticket", opts.ticket);
  if (opts.since !== undefined) url.searchParams.set("since", opts.since);
  if (opts.teamId !== undefined) url.searchParams.set("teamId", opts.teamId);
  return exports.default.fetch(new Request(url, { headers }));
}

/** An upgrade the server refused, as `api()` returns responses (for `expectProblem`). */
export async function refusedSubscribe(
  name: string,
  opts: Parameters<typeof subscribeRequest>[1] = {},
): Promise<ApiResponse> {
  const res = await subscribeRequest(name, opts);
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    body: (res.headers.get("content-type") ?? "").includes("json") && text ? JSON.parse(text) : text,
  };
}

/** A connected subscription that buffers frames so tests can await them in order. */
export class LiveSocket {
  /** Every frame received, in arrival order (never consumed). */
  readonly log: LiveFrame[] = [];
  private readonly buffer: LiveFrame[] = [];
  private waiter: (() => void) | null = null;
  private open = true;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.accept();
    this.closed = new Promise((resolve) =>
      ws.addEventListener("close", (e) => {
        this.open = false;
        this.waiter?.();
        resolve({ code: e.code, reason: e.reason });
      }),
    );
    ws.addEventListener("message", (e) => {
      // A socket the test closed itself records nothing more (like an app that went away).
      if (!this.open) return;
      const f = JSON.parse(typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data)) as LiveFrame;
      this.log.push(f);
      this.buffer.push(f);
      this.waiter?.();
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** The next frame of `type` (earlier frames of other types stay buffered). */
  async next<T extends LiveFrame["type"]>(type: T, timeoutMs = 5000): Promise<Extract<LiveFrame, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.buffer.findIndex((f) => f.type === type);
      if (i >= 0) return this.buffer.splice(i, 1)[0] as Extract<LiveFrame, { type: T }>;
      const left = deadline - Date.now();
      if (left <= 0 || !this.open)
        throw new Error(
          `no ${type} frame within ${timeoutMs} ms (open: ${this.open}); ` +
            `buffered: ${JSON.stringify(this.buffer).slice(0, 500)}`,
        );
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = null;
    }
  }

  /** The next `n` change frames, in arrival order. */
  async changes(n: number, timeoutMs = 5000): Promise<ChangeFrame[]> {
    const out: ChangeFrame[] = [];
    for (let i = 0; i < n; i++) out.push(await this.next("change", timeoutMs));
    return out;
  }

  /** Change frames until one carries `cursor` (inclusive). */
  async changesUntil(cursor: string, timeoutMs = 10_000): Promise<ChangeFrame[]> {
    const out: ChangeFrame[] = [];
    for (;;) {
      const f = await this.next("change", timeoutMs);
      out.push(f);
      if (f.cursor === cursor) return out;
    }
  }

  /** Removes and returns the buffered frames of `type`. */
  take<T extends LiveFrame["type"]>(type: T): Extract<LiveFrame, { type: T }>[] {
    const out = this.buffer.filter((f) => f.type === type) as Extract<LiveFrame, { type: T }>[];
    for (let i = this.buffer.length - 1; i >= 0; i--) if (this.buffer[i]!.type === type) this.buffer.splice(i, 1);
    return out;
  }

  /** Every change frame received so far (all of them, consumed or not). */
  allChanges(): ChangeFrame[] {
    return this.log.filter((f): f is ChangeFrame => f.type === "change");
  }

  /**
   * A round trip through the hub itself: a ping spelled so the runtime's auto-response does not
   * match it. Once its pong is here, every frame the hub sent before it is here too.
   */
  async roundTrip(): Promise<void> {
    this.send(HUB_PING);
    await this.next("pong");
  }

  async closedWithin(ms = 5000): Promise<{ code: number; reason: string }> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes from the client side; frames arriving afterwards are not recorded. */
  close(): void {
    this.open = false;
    try {
      this.ws.close(1000, "bye");
    } catch {
      // already closed
    }
  }
}

/** A ping the hub answers itself (the exact `{"type":"ping"}` is answered by the runtime, out of band). */
const HUB_PING = '{ "type" : "ping" }';

/** Opens a subscription for `user` and waits for its `ready` frame; returns the replayed changes too. */
export async function subscribe(
  user: TestUser,
  name: string,
  opts: { since?: string; via?: "header" | "query"; teamId?: string } = {},
) {
  const res = await subscribeRequest(name, { token: user.accessToken, ...opts });
  if (res.status !== 101 || !res.webSocket) throw new Error(`subscribe failed: ${res.status} ${await res.text()}`);
  const socket = new LiveSocket(res.webSocket);
  const ready = await socket.next("ready");
  const replayed = socket.allChanges();
  socket.take("change");
  return { socket, ready, replayed };
}

/** Checks that cursors strictly increase (change frames arrive in cursor order, none twice). */
export function expectCursorOrder(frames: { cursor: string }[]) {
  const seqs = frames.map((f) => seqOf(f.cursor));
  for (let i = 1; i < seqs.length; i++)
    expect(seqs[i], `cursor ${i} after ${seqs[i - 1]}`).toBeGreaterThan(seqs[i - 1]!);
}

/** The change-log position inside a cursor (cursors are opaque to apps; tests may look). */
export const seqOf = (cursor: string): number =>
  (JSON.parse(atob(cursor.replace(/-/g, "+").replace(/_/g, "/"))) as { q: number }).q;

/** A hub's Durable Object stub, by the name the feature gives it. */
export const hubStub = (name: string) => env.COLLECTION_HUB.get(env.COLLECTION_HUB.idFromName(name));

/**
 * Runs a hub's heartbeat alarm now. With `backstop`, its D1 backstops (session re-check, log end)
 * are made due first: they run at most every `liveRecheckSec`, kept in the hub's storage.
 */
export async function runHeartbeat(stub: DurableObjectStub, opts: { backstop?: boolean } = {}): Promise<boolean> {
  if (opts.backstop)
    await runInDurableObject(stub, (_hub: unknown, state) => void state.storage.kv.delete("recheckAt"));
  return runDurableObjectAlarm(stub);
}

/** Chat test harness: rooms over REST, and real WebSockets through the Worker's fetch handler. */
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import type { Message, ServerFrame } from "../../../src/features/chat/protocol";
import type { ChatRoom } from "../../../src/features/chat/room";
import type { Job } from "../../../src/jobs";
import { api, freshIp, type TestUser } from "../../helpers/api";
import { track } from "../../helpers/sockets";

export interface RoomBody {
  id: string;
  kind: "direct" | "group";
  name: string | null;
  createdBy: string;
  createdAt: string;
  members: { userId: string; role: "owner" | "member"; lastReadSeq: number }[];
  lastMessage: Message | null;
  lastSeq: number;
  unreadCount: number;
  muted: boolean;
}

/** Creates a group room owned by `owner` with `members`. */
export async function createGroup(owner: TestUser, members: TestUser[] = [], name = "Team"): Promise<RoomBody> {
  const res = await api<RoomBody>("/v1/rooms", {
    token: owner.accessToken,
    body: { kind: "group", name, memberIds: members.map((m) => m.id) },
  });
  if (res.status !== 201) throw new Error(`create room failed: ${res.status} ${res.text}`);
  return res.body;
}

let clientSeq = 0;
export const newClientId = () => `c-${Date.now().toString(36)}-${++clientSeq}`;

/** Sends a message over REST. */
export async function sendRest(user: TestUser, roomId: string, text: string, clientId = newClientId()) {
  return api<Message>(`/v1/rooms/${roomId}/messages`, { token: user.accessToken, body: { clientId, text } });
}

/** The upgrade request an app makes; `token` goes in the header unless `via` says query. */
export async function upgrade(
  roomId: string,
  opts: { token?: string | null; via?: "header" | "query"; afterSeq?: number; headers?: Record<string, string> } = {},
): Promise<Response> {
  const url = new URL(`https://outpost.test/v1/rooms/${roomId}/ws`);
  const headers = new Headers({ upgrade: "websocket", "cf-connecting-ip": freshIp(), ...opts.headers });
  if (opts.token && opts.via === "query") url.searchParams.set("token", opts.token);
  else if (opts.token) headers.set("authorization", `Bearer ${opts.token}`);
  if (opts.afterSeq !== undefined) url.searchParams.set("afterSeq", String(opts.afterSeq));
  return exports.default.fetch(new Request(url, { headers }));
}

/**
 * A connected socket that buffers incoming frames so tests can await them in order. It is closed
 * when the test that opened it finishes, pass or fail (test/helpers/sockets.ts).
 */
export class Socket {
  private readonly buffer: ServerFrame[] = [];
  private waiter: (() => void) | null = null;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly raw: string[] = [];

  constructor(readonly ws: WebSocket) {
    track(ws);
    ws.accept();
    this.closed = new Promise((resolve) =>
      ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })),
    );
    ws.addEventListener("message", (e) => {
      const text = typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data);
      this.raw.push(text);
      this.buffer.push(JSON.parse(text) as ServerFrame);
      this.waiter?.();
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** The next frame of `type` (earlier frames of other types stay buffered). */
  async next<T extends ServerFrame["type"]>(type: T, timeoutMs = 5000): Promise<Extract<ServerFrame, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.buffer.findIndex((f) => f.type === type);
      if (i >= 0) return this.buffer.splice(i, 1)[0] as Extract<ServerFrame, { type: T }>;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no ${type} frame within ${timeoutMs} ms; buffered: ${JSON.stringify(this.buffer)}`);
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

  /** The next `n` message frames' messages, in arrival order. */
  async messages(n: number): Promise<Message[]> {
    const out: Message[] = [];
    for (let i = 0; i < n; i++) out.push((await this.next("message")).message);
    return out;
  }

  /**
   * Asserts that no frame of `type` came, without waiting for time to pass: a round trip first
   * through each socket in `after` (whose frames could have caused one: once its pong is back, the
   * room has handled them), then through this one (the room's frames to a socket are ordered, so
   * anything sent here before its pong is here now).
   */
  async expectNo(type: ServerFrame["type"], after: Socket[] = []): Promise<void> {
    for (const s of after) await s.roundTrip();
    await this.roundTrip();
    expect(this.buffer.filter((f) => f.type === type)).toEqual([]);
  }

  /** Removes and returns every buffered frame of `type` received so far. */
  take<T extends ServerFrame["type"]>(type: T): Extract<ServerFrame, { type: T }>[] {
    const out = this.buffer.filter((f) => f.type === type) as Extract<ServerFrame, { type: T }>[];
    for (let i = this.buffer.length - 1; i >= 0; i--) if (this.buffer[i]!.type === type) this.buffer.splice(i, 1);
    return out;
  }

  /**
   * A round trip through the room itself: a ping spelled so the runtime's auto-response does not
   * match it, answered by the room after every frame this socket sent before. Once its pong is
   * here, everything the room sent this socket before that is here too.
   */
  async roundTrip(): Promise<void> {
    this.send(ROOM_PING);
    await this.next("pong");
  }

  /** The close event, or a failure after `ms` when the socket stays open. */
  async closedWithin(ms = 5000): Promise<{ code: number; reason: string }> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new Error(`socket still open after ${ms} ms; buffered: ${JSON.stringify(this.buffer).slice(0, 300)}`)),
        ms,
      );
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.ws.close(1000, "bye");
  }
}

/** A ping the room answers itself (the exact `{"type":"ping"}` is answered by the runtime, out of band). */
export const ROOM_PING = '{ "type" : "ping" }';

/** A second session of `user` (a fresh login), with its own tokens. */
export async function login(user: TestUser): Promise<TestUser> {
  const res = await api("/v1/auth/login", { body: { email: user.email, password: user.password } });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${res.text}`);
  return { ...user, accessToken: res.body.session.accessToken, refreshToken: res.body.session.refreshToken };
}

/** Opens a room socket for `user` and waits for its `ready` frame. */
export async function connect(
  user: TestUser,
  roomId: string,
  opts: { afterSeq?: number; via?: "header" | "query" } = {},
): Promise<{ socket: Socket; ready: Extract<ServerFrame, { type: "ready" }> }> {
  const res = await upgrade(roomId, { token: user.accessToken, ...opts });
  if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade failed: ${res.status} ${await res.text()}`);
  const socket = new Socket(res.webSocket);
  const ready = await socket.next("ready");
  return { socket, ready };
}

/** The room's Durable Object stub (for eviction and alarms). */
export const roomStub = (roomId: string) => env.CHAT_ROOM.get(env.CHAT_ROOM.idFromName(roomId));

/** A file row as the files feature stores it once uploaded. */
export async function insertFile(
  ownerId: string,
  visibility: "public" | "private",
  status: "ready" | "pending" = "ready",
): Promise<string> {
  const id = crypto.randomUUID();
  await env.DB.prepare(
    "INSERT INTO files (id, owner_id, object_key, name, content_type, size, visibility, etag, status, created_at) " +
      "VALUES (?, ?, ?, 'photo.jpg', 'image/jpeg', 3, ?, '', ?, ?)",
  )
    .bind(id, ownerId, `f/${id}`, visibility, status, new Date().toISOString())
    .run();
  return id;
}

/**
 * Runs `fn` while the room's send limiter (inside the object) has spent `userId`'s budget and
 * allows everyone else; returns the keys it was asked about. Deterministic, unlike racing the
 * real limiter's 10 s window, which can reset in the middle of a test.
 */
export async function withSpentSendLimit(roomId: string, userId: string, fn: () => Promise<void>): Promise<string[]> {
  const asked: string[] = [];
  const spent: RateLimit = {
    async limit({ key }) {
      asked.push(key);
      return { success: key !== `send:${userId}` };
    },
  };
  const restore = await patchRoomEnv(roomId, { CHAT_LIMITER: spent });
  try {
    await fn();
  } finally {
    await restore();
  }
  return asked;
}

/**
 * Replaces bindings of the room's env inside the (running) room object, e.g. a JOBS queue that
 * records; returns a function that puts the originals back. Holds while the object stays in memory
 * (an eviction builds a fresh object with the real env).
 */
export async function patchRoomEnv(roomId: string, patch: Partial<Env>): Promise<() => Promise<void>> {
  type WithEnv = { env: Env };
  const stub = roomStub(roomId);
  const originals = await runInDurableObject(stub, (room: ChatRoom) => {
    const e = (room as unknown as WithEnv).env;
    (room as unknown as WithEnv).env = { ...e, ...patch };
    return Object.fromEntries(Object.keys(patch).map((k) => [k, e[k as keyof Env]])) as Partial<Env>;
  });
  return async () => {
    await runInDurableObject(stub, (room: ChatRoom) => {
      const e = (room as unknown as WithEnv).env;
      (room as unknown as WithEnv).env = { ...e, ...originals };
    });
  };
}

/** What the room's test clock keeps: its time, the flush timers it holds, and the push jobs the room queued. */
interface TestClock {
  clock: number;
  timers: { due: number; fn: () => void }[];
  jobs: Job[];
  /** `sendBatch` calls of push jobs so far; the one numbered `failBatch` throws (a queue outage) instead. */
  batches: number;
  failBatch: number | null;
}

/** The room's internals the tests drive (see ChatRoom: `now`, `later`, `mirrorPolicy`, `enqueueJobs`). */
export interface RoomInternals {
  env: Env;
  test: TestClock;
  now(): number;
  later(fn: () => void, ms: number): unknown;
  cancelLater(timer: unknown): void;
  lastFlushAt: number;
  mirrorPolicy: { everyMs: number; maxPending: number; jobsPerBatch: number };
  enqueueJobs(jobs: Job[]): Promise<void>;
  flushNow(): Promise<void>;
}

/**
 * Puts a room object on a test clock: `now()` moves only when `advance` says, the flush timer
 * fires on that clock, and push jobs are recorded instead of queued (unless `recordJobs` is false).
 * `holdFlushes` also counts the last flush as just started, so nothing flushes until the clock
 * passes the pace (or the alarm runs). In memory: an eviction ends it.
 */
export async function onTestClock(
  roomId: string,
  opts: { holdFlushes?: boolean; everyMs?: number; jobsPerBatch?: number; recordJobs?: boolean } = {},
): Promise<void> {
  await runInDurableObject(roomStub(roomId), (o: ChatRoom) => {
    const r = o as unknown as RoomInternals;
    const t: TestClock = { clock: Date.now(), timers: [], jobs: [], batches: 0, failBatch: null };
    r.test = t;
    r.now = () => t.clock;
    r.later = (fn, ms) => {
      const timer = { due: t.clock + ms, fn };
      t.timers.push(timer);
      return timer;
    };
    r.cancelLater = (timer) => {
      t.timers = t.timers.filter((x) => x !== timer);
    };
    if (opts.recordJobs !== false) {
      r.enqueueJobs = async (jobs) => {
        if (++t.batches === t.failBatch) throw new Error("queue unavailable (test)");
        t.jobs.push(...jobs);
      };
    }
    if (opts.everyMs !== undefined) r.mirrorPolicy.everyMs = opts.everyMs;
    if (opts.jobsPerBatch !== undefined) r.mirrorPolicy.jobsPerBatch = opts.jobsPerBatch;
    if (opts.holdFlushes) r.lastFlushAt = t.clock;
  });
}

/** Moves the room's test clock forward and fires the timers that came due. */
export async function advance(roomId: string, ms: number): Promise<void> {
  await runInDurableObject(roomStub(roomId), (o: ChatRoom) => {
    const t = (o as unknown as RoomInternals).test;
    t.clock += ms;
    const due = t.timers.filter((x) => x.due <= t.clock);
    t.timers = t.timers.filter((x) => x.due > t.clock);
    for (const x of due) x.fn();
  });
}

/** Runs `fn` on the room object's internals. */
export function inRoom<T>(
  roomId: string,
  fn: (r: RoomInternals, state: DurableObjectState) => T | Promise<T>,
): Promise<T> {
  return runInDurableObject(roomStub(roomId), (o: ChatRoom, state) => fn(o as unknown as RoomInternals, state));
}

/**
 * The seqs of the room's messages whose flush has not finished (above the log's mirror watermark,
 * `meta.mirrored_seq`), read from its SQLite.
 */
export function unflushedSeqs(roomId: string): Promise<number[]> {
  return inRoom(roomId, (_r, state) =>
    state.storage.sql
      .exec<{ seq: number }>(
        "SELECT seq FROM messages WHERE seq > (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'mirrored_seq') ORDER BY seq",
      )
      .toArray()
      .map((x) => x.seq),
  );
}

/** The room's row in D1 (what GET /v1/rooms lists) and its members' read positions. */
export async function d1Room(
  roomId: string,
): Promise<{ lastSeq: number; lastMessage: Message | null; reads: Record<string, number> }> {
  const room = await env.DB.prepare("SELECT last_seq, last_message FROM rooms WHERE id = ?")
    .bind(roomId)
    .first<{ last_seq: number; last_message: string | null }>();
  const members = await env.DB.prepare("SELECT user_id, last_read_seq FROM room_members WHERE room_id = ?")
    .bind(roomId)
    .all<{ user_id: string; last_read_seq: number }>();
  return {
    lastSeq: room?.last_seq ?? 0,
    lastMessage: room?.last_message ? (JSON.parse(room.last_message) as Message) : null,
    reads: Object.fromEntries(members.results.map((m) => [m.user_id, m.last_read_seq])),
  };
}

/**
 * Chat rooms: REST for rooms, members and history; one reconnecting socket per open room that
 * resumes from the last seq it delivered (so nothing is missed or shown twice), follows `more`
 * pages, and sends through an outbox kept in storage (same clientId on every retry, so the server
 * stores each message once).
 */
import { type Core, enc } from "./core.js";
import { isRetryable, OutpostError, signedOut } from "./errors.js";
import { type Pages, pages } from "./pages.js";
import { type Frame, LiveSocket } from "./socket.js";
import { readJson, writeJson } from "./storage.js";
import type { Message, Page, RoomInfo } from "./types.js";
import { backoff, Emitter, serial, uuid } from "./util.js";

export interface RoomEvents {
  /** Each message once, in seq order (the app's own included, once the server stored them). */
  message: [Message];
  /** A message was deleted; its seq stays taken. */
  deleted: [number];
  typing: [string];
  read: [{ userId: string; seq: number }];
  presence: [{ userId: string; online: boolean }];
  /** The socket is (re)connected: the room's last seq and who is online. */
  ready: [{ lastSeq: number; online: string[] }];
  /** A send the server refused for good, or another error frame. */
  error: [OutpostError];
  /**
   * The socket stopped for good: removed from the room (4403), not a member, the socket ticket
   * refused, or the user signed out / another user signed in (`signed_out`).
   */
  stopped: [OutpostError];
}

interface Outgoing {
  clientId: string;
  text?: string;
  fileId?: string;
}

type Waiter = { resolve(m: Message): void; reject(e: OutpostError): void };

export class Room {
  /** The highest seq delivered to `message` listeners without gaps (null before the first `ready`). */
  lastSeq: number | null = null;
  private readonly ev = new Emitter<RoomEvents>();
  private readonly sock: LiveSocket;
  private outbox: Outgoing[] = [];
  /** Whose outbox is loaded (undefined until the stored session was read). */
  private owner: string | null | undefined;
  private readonly waiters = new Map<string, Waiter>();
  private readonly early = new Map<number, Message | null>();
  private loaded: Promise<void>;
  private readonly io = serial();
  private ready = false;
  private halted: OutpostError | null = null;
  private syncing = false;
  private retries = 0;
  /** After a refusal that was not the message's fault: the outbox goes out one at a time over REST, in order. */
  private held = false;
  private draining = false;

  constructor(
    private readonly c: Core,
    readonly id: string,
  ) {
    this.sock = new LiveSocket(c.sockets, {
      path: () => `/v1/rooms/${enc(id)}/ws${this.lastSeq !== null ? `?afterSeq=${this.lastSeq}` : ""}`,
      onFrame: (f) => this.frame(f),
      onClose: () => {
        this.ready = false;
        return false;
      },
      probe: () => this.get(),
      onHalt: (e) => {
        this.ready = false;
        this.halted = e;
        for (const w of this.waiters.values()) w.reject(e);
        this.waiters.clear();
        this.ev.emit("stopped", e);
      },
    });
    this.loaded = c.auth.ready.then(async () => {
      if (this.owner !== undefined) return;
      const user = c.auth.user?.id ?? null;
      this.owner = user;
      const saved = user ? await readJson<Outgoing[]>(c.storage, this.key(user), []) : [];
      if (this.owner === user) this.outbox = saved;
    });
  }

  /**
   * @internal The signed-in user changed. Their sends stop here: pending `send()` calls reject with
   * `signed_out`, the socket stops (`stopped`), and the outbox is dropped (`drop`, an explicit
   * sign-out) or kept in storage under that user until they sign in again. The new user's own
   * outbox is loaded.
   */
  switchUser(user: string | null, drop: boolean): void {
    if (user === this.owner) return;
    const prev = this.owner;
    this.owner = user;
    const err = signedOut("chat message");
    if (this.sock.running) {
      this.disconnect();
      this.ev.emit("stopped", err);
    }
    for (const w of this.waiters.values()) w.reject(err);
    this.waiters.clear();
    this.outbox = [];
    this.held = false;
    this.early.clear();
    this.loaded = this.loaded.then(async () => {
      if (drop && prev) await this.io(() => writeJson(this.c.storage, this.key(prev), undefined));
      const saved = user ? await readJson<Outgoing[]>(this.c.storage, this.key(user), []) : [];
      if (this.owner === user) this.outbox = saved;
    });
  }

  on<K extends keyof RoomEvents>(event: K, cb: (...args: RoomEvents[K]) => void): () => void {
    return this.ev.on(event, cb);
  }

  /**
   * Opens the socket (kept open, reconnecting, until `disconnect`). `afterSeq`: the last seq the app
   * already has (e.g. from `history`); everything after it is delivered. Without it, only new messages.
   */
  connect(o: { afterSeq?: number } = {}): this {
    if (o.afterSeq !== undefined) this.lastSeq = o.afterSeq;
    this.halted = null;
    this.sock.start();
    return this;
  }

  disconnect(): void {
    this.ready = false;
    this.sock.stop();
  }

  /** @internal background / offline */
  pause(): void {
    this.ready = false;
    this.sock.pause();
  }
  /** @internal foreground / online */
  resume(): void {
    this.sock.resume();
  }

  /**
   * Sends a message: resolves with it once the server stored it. While the socket is down the
   * message waits in an outbox kept in storage and goes out on reconnect, with the same clientId.
   */
  async send(m: { text?: string; fileId?: string; clientId?: string }): Promise<Message> {
    await this.loaded;
    if (!this.owner) throw new OutpostError(401, "unauthorized", "Sign in before sending messages.");
    if (this.halted) throw this.halted;
    const o: Outgoing = {
      clientId: m.clientId ?? uuid(),
      ...(m.text !== undefined && { text: m.text }),
      ...(m.fileId !== undefined && { fileId: m.fileId }),
    };
    const done = new Promise<Message>((resolve, reject) => this.waiters.set(o.clientId, { resolve, reject }));
    this.outbox.push(o);
    await this.save();
    if (this.held) void this.drain();
    else if (this.ready) this.push(o);
    return done;
  }

  /** Sends still waiting for the server. */
  get pending(): number {
    return this.outbox.length;
  }

  /** Tells the room the user is typing (forwarded at most every 3 s by the server). */
  typing(): void {
    this.sock.send({ type: "typing" });
  }

  /** Moves the user's read position to `seq`. */
  async markRead(seq: number): Promise<void> {
    if (!this.ready || !this.sock.send({ type: "read", seq })) {
      await this.c.http.send(`/v1/rooms/${enc(this.id)}/read`, { method: "POST", body: { seq } });
    }
  }

  /**
   * History in seq order: the latest page, `before` a seq, or `after` a seq; `await` → that page,
   * `for await` / `.all()` → it and the pages that follow in the same direction.
   */
  history(q: { before?: number; after?: number; limit?: number; cursor?: string } = {}): Pages<Message> {
    const path = `/v1/rooms/${enc(this.id)}/messages`;
    const { cursor: start, ...rest } = q;
    return pages(
      (cursor) => this.c.http.json<Page<Message>>(path, { query: cursor ? { cursor, limit: q.limit } : rest }),
      start,
    );
  }

  get(): Promise<RoomInfo> {
    return this.c.http.json(`/v1/rooms/${enc(this.id)}`);
  }
  addMember(userId: string): Promise<RoomInfo> {
    return this.c.http.json(`/v1/rooms/${enc(this.id)}/members`, { method: "POST", body: { userId } });
  }
  async removeMember(userId: string): Promise<void> {
    await this.c.http.send(`/v1/rooms/${enc(this.id)}/members/${enc(userId)}`, { method: "DELETE" });
  }
  async leave(): Promise<void> {
    this.disconnect();
    await this.removeMember("me");
  }
  async mute(muted: boolean): Promise<void> {
    await this.c.http.send(`/v1/rooms/${enc(this.id)}/members/me`, { method: "PATCH", body: { muted } });
  }
  async deleteMessage(seq: number): Promise<void> {
    await this.c.http.send(`/v1/rooms/${enc(this.id)}/messages/${seq}`, { method: "DELETE" });
  }

  // --- socket --------------------------------------------------------------------------

  private frame(f: Frame): void {
    switch (f.type) {
      case "ready": {
        this.ready = true;
        this.syncing = false;
        this.sock.healthy();
        const r = f as unknown as RoomEvents["ready"][0];
        if (this.lastSeq === null) this.lastSeq = r.lastSeq;
        this.ev.emit("ready", { lastSeq: r.lastSeq, online: r.online });
        void this.loaded.then(() => {
          if (this.held) return void this.drain();
          for (const o of this.outbox) this.push(o);
        });
        return;
      }
      case "message": {
        const m = f.message as Message & { deleted?: boolean };
        this.receive(m.seq, m.deleted ? null : m);
        return;
      }
      case "deleted":
        this.receive(f.seq as number, null);
        return;
      case "more":
        this.syncing = true;
        this.sock.send({ type: "sync", afterSeq: typeof f.afterSeq === "number" ? f.afterSeq : (this.lastSeq ?? 0) });
        return;
      case "typing":
        this.ev.emit("typing", f.userId as string);
        return;
      case "read":
        this.ev.emit("read", { userId: f.userId as string, seq: f.seq as number });
        return;
      case "presence":
        this.ev.emit("presence", { userId: f.userId as string, online: f.online as boolean });
        return;
      case "error":
        this.refused(f);
    }
  }

  /** A message (or a deletion: null) at `seq`: delivered once, in order; early ones wait for the gap to fill. */
  private receive(seq: number, m: Message | null): void {
    if (m && m.senderId === this.c.auth.user?.id) this.settle(m);
    const last = this.lastSeq;
    if (last !== null && seq <= last) {
      if (!m) this.ev.emit("deleted", seq);
      return;
    }
    if (last !== null && seq > last + 1) {
      if (!this.early.has(seq)) {
        this.early.set(seq, m);
        if (!this.syncing) {
          this.syncing = true;
          this.sock.send({ type: "sync", afterSeq: last });
        }
        return;
      }
      // Seen twice: the replay asked for has no message in the gap. Go on from what arrived.
      seq = Math.min(...this.early.keys());
      m = this.early.get(seq) ?? null;
      this.early.delete(seq);
    }
    this.deliver(seq, m);
    for (let n = seq + 1; this.early.has(n); n++) {
      const e = this.early.get(n) ?? null;
      this.early.delete(n);
      this.deliver(n, e);
    }
    if (this.early.size === 0) this.syncing = false;
  }

  private deliver(seq: number, m: Message | null): void {
    this.lastSeq = seq;
    if (m) this.ev.emit("message", m);
    else this.ev.emit("deleted", seq);
  }

  private settle(m: Message): void {
    const i = this.outbox.findIndex((o) => o.clientId === m.clientId);
    if (i >= 0) {
      this.outbox.splice(i, 1);
      void this.save();
    }
    this.waiters.get(m.clientId)?.resolve(m);
    this.waiters.delete(m.clientId);
  }

  private refused(f: Frame): void {
    const e = new OutpostError(0, String(f.code), String(f.message ?? f.code));
    const o = this.outbox.find((x) => x.clientId === f.clientId);
    if (!o) {
      this.ev.emit("error", e);
      return;
    }
    if (f.code === "rate_limited" || f.code === "internal") {
      // Not this message's fault: from here the outbox goes out in order, one at a time (same clientIds).
      this.held = true;
      void this.drain();
      return;
    }
    this.fail(o, e);
  }

  /** A send the server refused for good: dropped from the outbox, its caller told. */
  private fail(o: Outgoing, e: OutpostError): void {
    const i = this.outbox.indexOf(o);
    if (i >= 0) this.outbox.splice(i, 1);
    void this.save();
    this.waiters.get(o.clientId)?.reject(e);
    this.waiters.delete(o.clientId);
    this.ev.emit("error", e);
  }

  /**
   * Sends the outbox oldest first over REST, each after the previous one was stored, waiting as a
   * 429's `Retry-After` says (else backoff; the backoff starts over after each success). Once the
   * outbox is empty, sends go back to the socket. Stops while the socket is down or the user changed.
   */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const owner = this.owner;
    try {
      while (this.held && this.ready && this.owner === owner && this.outbox.length) {
        const o = this.outbox[0] as Outgoing;
        try {
          const m = await this.c.http.json<Message>(`/v1/rooms/${enc(this.id)}/messages`, { method: "POST", body: o });
          this.retries = 0;
          if (this.owner === owner) this.settle(m);
        } catch (e) {
          if (this.owner !== owner || this.outbox[0] !== o) continue;
          if (e instanceof OutpostError && !isRetryable(e)) {
            this.fail(o, e);
            continue;
          }
          const wait =
            e instanceof OutpostError && e.retryAfter !== null
              ? e.retryAfter * 1000
              : backoff(this.retries++, 1000, 30_000);
          await new Promise((r) => setTimeout(r, wait));
        }
      }
      if (!this.outbox.length) this.held = false;
    } finally {
      this.draining = false;
    }
  }

  private push(o: Outgoing): void {
    this.sock.send({ type: "send", ...o });
  }

  private key(user: string): string {
    return `${this.c.prefix}chat.${user}.${this.id}`;
  }

  private save(): Promise<void> {
    if (!this.owner) return Promise.resolve();
    const key = this.key(this.owner);
    return this.io(() => writeJson(this.c.storage, key, this.outbox.length ? this.outbox : undefined));
  }
}

/** `client.rooms`: create and list rooms; `client.room(id)` opens one. */
export class Rooms {
  constructor(private readonly c: Core) {}
  /** A group (the caller owns it), or a direct room with one other user (asking again returns the same room). */
  create(body: { memberIds: string[]; kind?: "direct" | "group"; name?: string }): Promise<RoomInfo> {
    return this.c.http.json("/v1/rooms", { method: "POST", body });
  }
  /** The caller's rooms, most recent activity first, with lastMessage and unreadCount (a `Pages` list). */
  list(q: { limit?: number; cursor?: string } = {}): Pages<RoomInfo> {
    return pages(
      (cursor) => this.c.http.json<Page<RoomInfo>>("/v1/rooms", { query: { limit: q.limit, cursor } }),
      q.cursor,
    );
  }
}

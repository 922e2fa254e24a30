/**
 * CollectionHub: the Durable Object that holds live-data subscriptions and sends each socket every change in
 * its scope exactly once, in cursor order. See docs/architecture.md#live-data-hubs.
 */
import type { BatchItem } from "drizzle-orm/batch";
import * as v from "valibot";
import { limits } from "../../config";
import { type Database, primaryDb } from "../../db";
import type { TeamRole } from "../../db/schema";
import {
  CLOSE_HEARTBEAT,
  CLOSE_REMOVED,
  CLOSE_SESSION_ENDED,
  SessionEnds,
  type SocketAttachment,
  SocketObject,
} from "../../lib/sockets";
import { admits, logViewOf, nudgeMemberHubs, registerHub, teamSocketFilter } from "./hub-scope";
import {
  CLOSE_INTERNAL,
  CLOSE_RESYNC,
  type HubKey,
  hubStub,
  isRoot,
  LIVE_HEADERS,
  LiveClientFrame,
  type LiveErrorCode,
  type LiveServerFrame,
} from "./live";
import { OpenRow } from "./live-keys";
import { type Collection, findCollection } from "./registry";
import { cursorAt, type LogItem, type LogPage, type LogView, liveBackstop, readLog } from "./service";

/** Per-socket state that must survive hibernation. */
interface Attachment extends SocketAttachment {
  /** False while the socket replays; true once it got `ready` and receives the hub's fan-out. */
  live: boolean;
  /** Live sockets: the position up to which the socket has every change in scope. */
  sent: number;
  /** A team hub's socket: its user's role in the team (kept current by `memberChanged`). */
  role?: TeamRole | undefined;
}

export class CollectionHub extends SocketObject<Attachment, LiveServerFrame> {
  /** Which hub this is (bound by the first call that brings a socket or a notification to one). */
  private key: HubKey | null;
  /**
   * Up to where every live socket has everything; null while nothing is live. In memory; rebuilt from the
   * attachments after hibernation (docs/architecture.md#exactly-once-delivery).
   */
  private head: number | null;
  /** Bumped whenever `head` moves: a replay read that started at the same version saw everything fanned out. */
  private headVersion = 0;
  /** The highest seq a notification announced (in memory: nothing is in flight while the hub sleeps). */
  private known = 0;
  /**
   * A notification without a seq came (something committed, position unknown): a read that starts
   * after it must run. A read already in flight may have started before that commit.
   */
  private reread = false;
  /** The fan-out read in progress, if any. */
  private pumping: Promise<void> | null = null;
  /** Root only: the other shards that have sockets, which get each page forwarded (kept in storage). */
  private readonly shards: Set<number>;
  /** Root only: when each shard last registered (a counter): a stale "no sockets" answer keeps a fresh registration. */
  private readonly registeredAt = new Map<number, number>();
  private registrations = 0;
  /** Shards: upgrades in progress (registered with the root, socket not accepted yet): the shard counts as active. */
  private arriving = 0;
  /** A team's hub: the members whose member hubs have sockets and get nudged on each change (kept in storage). */
  private readonly members: Set<string>;
  /** A team's hub: members removed while an upgrade was checking their role (that upgrade refuses). */
  private readonly removals = new SessionEnds();
  /** This hub's `live_hubs` row, there while a socket is open or arriving (writes ask it whether to notify). */
  private readonly openRow: OpenRow;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.key = ctx.storage.kv.get<HubKey>("key") ?? null;
    this.shards = new Set(ctx.storage.kv.get<number[]>("shards") ?? []);
    this.members = new Set(ctx.storage.kv.get<string[]>("members") ?? []);
    // Woken from hibernation: the live sockets' attachments say where they stand.
    const sent = this.liveSockets().map((ws) => this.attachment(ws)!.sent);
    this.head = sent.length ? Math.min(...sent) : null;
    this.openRow = new OpenRow(this.openSockets().length > 0 ? true : null);
  }

  // --- RPC ---------------------------------------------------------------------------------

  /**
   * Changes up to `seq` committed (null: something committed, seq unknown). Reads the log from
   * `head` and sends what is new to the live sockets; resolves when that read is done. A hub with
   * no socket, open or arriving (whose replay reads on to `known`), does nothing but drop its row.
   */
  async notify(key: HubKey, seq: number | null): Promise<void> {
    const idle = this.ctx.getWebSockets().length === 0 && this.arriving === 0;
    // (A row left by sockets gone without a close event, a restart: dropped.)
    if (idle && this.shards.size === 0 && this.members.size === 0) return this.ctx.waitUntil(this.settleOpenRow(key));
    this.bind(key);
    if (this.members.size > 0) await this.nudgeMembers(seq);
    if (this.head === null) {
      if (this.shards.size > 0) {
        // A root with no live socket of its own that forwards to shards: the write's seq is a
        // starting point (shards that stand further back read the gap themselves).
        if (seq === null) return this.nudgeShards();
        this.setHead(seq - 1);
      } else {
        // Nobody is live: the sockets still replaying read the log to its end before going live.
        if (seq !== null) this.known = Math.max(this.known, seq);
        else this.reread = true;
        return;
      }
    }
    if (seq !== null) this.known = Math.max(this.known, seq);
    else this.reread = true;
    await this.pump();
  }

  /**
   * A page the root read (shards only): changes after `from` up to position `to`. Returns false when
   * this shard has no socket any more (the root stops forwarding to it).
   */
  async deliver(key: HubKey, from: number, to: number, items: LogPage["items"]): Promise<boolean> {
    if (this.openSockets().length === 0 && this.arriving === 0) {
      this.ctx.waitUntil(this.settleOpenRow(key));
      return false;
    }
    this.bind(key);
    this.known = Math.max(this.known, to);
    // Nobody live yet: the replaying sockets read the log to its end (and `known` makes them read on).
    if (this.head === null) return true;
    if (from > this.head) {
      // A page after a gap: read the log from where this shard stands.
      this.ctx.waitUntil(this.pump());
      return true;
    }
    this.fanOut(items, to);
    this.setHead(Math.max(this.head, to));
    return true;
  }

  /** A shard with sockets asks the root (shard 0) to forward pages to it. */
  async shardLive(key: HubKey, shard: number): Promise<void> {
    this.bind(key);
    this.registeredAt.set(shard, ++this.registrations);
    if (this.shards.has(shard)) return;
    this.shards.add(shard);
    this.remember("shards", [...this.shards]);
  }

  /**
   * A team's hub: `userId`'s role in the team changed (null: removed or left; `userId` null: the
   * team was deleted). Sockets that may no longer read the team close with 4403; the others keep
   * their socket with the new role.
   */
  async memberChanged(key: HubKey, userId: string | null, role: TeamRole | null): Promise<void> {
    this.bind(key);
    if (userId === null) {
      this.members.clear();
      this.remember("members", []);
    } else if (role === null) this.removals.end(userId, "all");
    for (const ws of this.openSockets()) {
      const a = this.attachment(ws)!;
      if (userId !== null && a.userId !== userId) continue;
      if (role !== null && this.admits(a.userId, role)) this.attach(ws, { ...a, role });
      else this.closeSocket(ws, CLOSE_REMOVED, userId === null ? "team deleted" : "no longer a member of this team");
    }
    // A member who left by deleting their account left records behind (a new version, no owner).
    if (userId !== null && role === null) await this.notify(key, null);
  }

  /** A team's hub: `userId`'s member hub has sockets and wants a nudge on each change (idempotent). */
  async memberLive(key: HubKey, userId: string): Promise<void> {
    this.bind(key);
    if (this.members.has(userId)) return;
    this.members.add(userId);
    this.remember("members", [...this.members]);
  }

  /**
   * A member's hub: a change committed in one of the user's teams (`notify` without waiting for the
   * read). False when this hub has no socket (the team's hub stops nudging it).
   */
  async nudge(key: HubKey, seq: number | null): Promise<boolean> {
    if (this.openSockets().length === 0 && this.arriving === 0) return false;
    this.ctx.waitUntil(this.notify(key, seq));
    return true;
  }

  /**
   * A member's hub: the user joined a team (or its role changed): register with every team's hub
   * again, then read the log (a change the new team's hub committed before it knew us is not lost).
   */
  async teamsChanged(key: HubKey): Promise<void> {
    this.bind(key);
    if (this.openSockets().length === 0) return;
    await this.register();
    await this.notify(key, null);
  }

  /** Closes the sockets `userId` opened with `sessions` (or any session) with 4401; returns how many. */
  async endSessions(_key: HubKey, userId: string, sessions: string[] | "all"): Promise<number> {
    const sockets = this.endedSessionSockets(userId, sessions);
    for (const ws of sockets) this.closeSocket(ws, CLOSE_SESSION_ENDED, "session ended");
    return sockets.length;
  }

  // --- WebSockets --------------------------------------------------------------------------

  /** The upgrade, forwarded by the Worker with the verified identity and the hub key in `LIVE_HEADERS`. */
  override async fetch(request: Request): Promise<Response> {
    const h = request.headers;
    const userId = h.get(LIVE_HEADERS.user);
    const sessionId = h.get(LIVE_HEADERS.session);
    const keyRaw = h.get(LIVE_HEADERS.key);
    const sinceRaw = h.get(LIVE_HEADERS.since);
    const since = sinceRaw === null ? null : Number(sinceRaw);
    if (
      h.get("upgrade")?.toLowerCase() !== "websocket" ||
      !userId ||
      !sessionId ||
      !keyRaw ||
      (since !== null && !Number.isSafeInteger(since))
    ) {
      return new Response(null, { status: 400 });
    }
    this.bind(JSON.parse(keyRaw) as HubKey);
    this.arriving++;
    try {
      return await this.upgrade(userId, sessionId, since);
    } finally {
      this.arriving--;
      // A refused upgrade that was the only one: the row goes again.
      this.ctx.waitUntil(this.settleOpenRow());
    }
  }

  private async upgrade(userId: string, sessionId: string, since: number | null): Promise<Response> {
    // A shard's first open socket: the root starts forwarding pages here before this socket's
    // replay read, so nothing committed after that read can pass this shard by (while the upgrade
    // is in progress the shard answers forwards as active).
    // A member's hub registers with each of the user's teams' hubs the same way.
    if ((!isRoot(this.key!) || this.key!.member !== undefined) && this.openSockets().length === 0) {
      try {
        await this.register();
      } catch (e) {
        console.error("live: hub registration failed:", (e as Error).message);
        return new Response(null, { status: 503 });
      }
    }
    const sessionEnded = this.sessionEnds.watch(userId, sessionId);
    const removed = this.removals.watch(userId, sessionId);
    // The first replay page, with the check that the token's session still exists (a logged-out
    // access token still verifies until it expires), after the hub's `live_hubs` row (a later write
    // notifies this hub, an earlier one is in this read): one D1 round trip.
    let first: LogPage;
    let version = this.headVersion;
    try {
      const open = (await this.openRow.opening(this.database(), this.key!)).statement;
      version = this.headVersion;
      first = await this.readLog(since ?? 0, limits.liveReplayPage, { userId, sessionId }, open);
      if (open) this.openRow.opened();
    } catch (e) {
      console.error("live: first replay read failed:", (e as Error).message);
      return new Response(null, { status: 503 });
    }
    if (!first.sessionAlive || sessionEnded()) return new Response(null, { status: 401 });
    // A team's hub: only a member whose role lets them list (404, as for any request about a team not theirs).
    const role = this.key!.team === undefined ? undefined : first.role;
    if (role === null || (role !== undefined && (!this.admits(userId, role) || removed())))
      return new Response(null, { status: 404 });

    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.accept(server, { userId, sessionId, live: false, sent: 0, lastSeenAt: Date.now(), gone: false, role });
    await this.ensureAlarm();
    if (since !== null && since < first.horizon) {
      this.resync(server);
    } else {
      // Frames sent before the 101 is returned wait in the socket, in order.
      this.sendPage(server, first);
      if (!this.tryGoLive(server, first, version)) this.ctx.waitUntil(this.catchUp(server, first.position));
    }
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    if (!this.touch(ws)) return;
    let frame: unknown;
    try {
      frame = typeof data === "string" && data.length <= limits.liveFrameMaxBytes ? JSON.parse(data) : undefined;
    } catch {
      frame = undefined;
    }
    if (v.is(LiveClientFrame, frame)) return this.send(ws, { type: "pong" });
    this.sendError(
      ws,
      "bad_frame",
      `The only frame a subscription takes is {"type":"ping"} (JSON text, at most ${limits.liveFrameMaxBytes} bytes).`,
    );
  }

  /** A socket closed on the client's side: `head` goes when it was the last live one. */
  protected socketClosed(): void {
    this.releaseHead();
    this.ctx.waitUntil(this.settleOpenRow());
  }

  /**
   * Heartbeat, every `liveHeartbeatCheckSec` while sockets are open: closes silent sockets (dead
   * phones send no close; no D1 needed). At most every `liveRecheckSec`, the backstops in one D1
   * round trip: sockets whose session ended without the RPC reaching us are closed (4401), and
   * when the log moved past `head` (a notification was lost and no write came after it) the hub
   * reads it. A shard also registers with the root again (it may have restarted).
   */
  override async alarm(): Promise<void> {
    const now = Date.now();
    for (const ws of this.silentSockets(limits.liveHeartbeatTimeoutSec * 1000, now))
      this.closeSocket(ws, CLOSE_HEARTBEAT, "heartbeat timeout");
    const open = this.openSockets();
    if (open.length > 0 && (this.ctx.storage.kv.get<number>("recheckAt") ?? 0) <= now) {
      try {
        const { alive, top } = await liveBackstop(this.database(), this.collection(), this.view(), [
          ...new Set(open.map((ws) => this.attachment(ws)!.sessionId)),
        ]);
        for (const ws of open)
          if (!alive.has(this.attachment(ws)!.sessionId)) this.closeSocket(ws, CLOSE_SESSION_ENDED, "session ended");
        if (this.head !== null && top > this.head) {
          this.known = Math.max(this.known, top);
          await this.pump();
        }
      } catch (e) {
        console.error("live: backstop check failed:", (e as Error).message);
      }
      if (this.key && (!isRoot(this.key) || this.key.member !== undefined) && this.openSockets().length > 0)
        await this.register().catch((e: Error) => console.error("live: hub registration failed:", e.message));
      // Written after the repair's frames went out (a storage write holds later frames until durable).
      this.remember("recheckAt", now + limits.liveRecheckSec * 1000);
    }
    if (this.openSockets().length > 0)
      await this.ctx.storage.setAlarm(Date.now() + limits.liveHeartbeatCheckSec * 1000);
  }

  // --- replay and fan-out ------------------------------------------------------------------

  /** One read of the log in this hub's scope (a method, so tests can hook it); `first` runs before it in its batch. */
  protected readLog(
    from: number,
    limit: number,
    session?: { userId: string; sessionId: string },
    first?: BatchItem<"sqlite"> | null,
  ): Promise<LogPage> {
    return readLog(this.database(), this.collection(), this.view(), from, limit, session, first);
  }

  /** Deletes this hub's `live_hubs` row when no socket is open or arriving (see `OpenRow`). */
  private settleOpenRow(key = this.key): Promise<void> {
    if (!key) return Promise.resolve();
    return this.openRow.settle(this.database(), key, () => this.openSockets().length > 0 || this.arriving > 0);
  }

  private view(): LogView {
    return logViewOf(this.key!, this.collection());
  }

  private admits(userId: string, role: TeamRole): boolean {
    return admits(this.collection(), userId, role);
  }

  private filterFor(a: Attachment): ((x: LogItem) => boolean) | null {
    return this.key?.team === undefined ? null : teamSocketFilter(this.collection(), a);
  }

  /** Reads from the primary (a Durable Object has no client bookmark; a lagging replica would look like a gap). */
  protected database(): Database {
    return primaryDb(this.env.DB);
  }

  /** Replays page after page until the socket can go live. */
  private async catchUp(ws: WebSocket, from: number): Promise<void> {
    let position = from;
    try {
      for (;;) {
        if (!this.isOpen(ws)) return;
        const version = this.headVersion;
        const page = await this.readLog(position, limits.liveReplayPage);
        if (!this.isOpen(ws)) return;
        // The retention task pruned past this replay while it ran (a very long replay).
        if (page.horizon > position) return this.resync(ws);
        this.sendPage(ws, page);
        position = page.position;
        if (this.tryGoLive(ws, page, version)) return;
      }
    } catch (e) {
      console.error("live: replay failed:", (e as Error).message);
      this.closeSocket(ws, CLOSE_INTERNAL, "replay failed; reconnect with your last cursor");
    }
  }

  /**
   * After a page that reached the end of the log (read while `head` was at `version`): the socket
   * goes live unless a fan-out moved `head` past it during the read (it may have sent changes this
   * read did not see: read on). Synchronous, so no fan-out interleaves. With no `head` yet (nobody
   * live), `head` starts at this socket's position.
   */
  private tryGoLive(ws: WebSocket, page: LogPage, version: number): boolean {
    if (!page.end) return false;
    if (this.head !== null && page.position < this.head && this.headVersion !== version) return false;
    const attachment = this.attachment(ws);
    if (!attachment || attachment.gone) return true;
    this.attach(ws, { ...attachment, live: true, sent: page.position });
    this.send(ws, { type: "ready", cursor: cursorAt(page.position) });
    if (this.head === null) this.setHead(page.position);
    if (this.known > this.head! || this.reread) this.ctx.waitUntil(this.pump());
    return true;
  }

  /** Runs the fan-out read, or joins the one in progress (which loops while notifications are ahead of it). */
  private pump(): Promise<void> {
    this.pumping ??= this.runPump().finally(() => {
      this.pumping = null;
    });
    return this.pumping;
  }

  private async runPump(): Promise<void> {
    while (this.head !== null && (this.known > this.head || this.reread)) {
      const from = this.head;
      const knownAtRead = this.known;
      const rereadAtRead = this.reread;
      this.reread = false;
      let page: LogPage;
      try {
        page = await this.readLog(from, limits.liveReplayPage);
      } catch (e) {
        this.reread ||= rereadAtRead;
        console.error("live: fan-out read failed (the next notification or heartbeat retries):", (e as Error).message);
        return;
      }
      // Every live socket left (and maybe another went live from elsewhere) while reading: read again.
      if (this.head !== from) {
        this.reread ||= rereadAtRead;
        continue;
      }
      if (page.horizon > from) {
        for (const ws of this.liveSockets()) if (this.attachment(ws)!.sent < page.horizon) this.resync(ws);
      }
      const position = Math.max(from, page.position);
      this.fanOut(page.items, position);
      if (this.head !== null) this.setHead(position);
      // More after a full page: read on. A notified seq this read reached the end without finding
      // (another owner's, or superseded): done.
      if (!page.end) this.known = Math.max(this.known, position + 1);
      else if (this.known === knownAtRead) this.known = Math.min(this.known, position);
      if (this.shards.size > 0) await this.forward(from, position, page.items);
    }
  }

  /** Root: the page goes to every registered shard (the next read waits for it); shards without sockets are dropped. */
  private async forward(from: number, to: number, items: LogPage["items"]): Promise<void> {
    const collection = this.key!.collection;
    const shards = [...this.shards];
    const epochs = shards.map((shard) => this.registeredAt.get(shard) ?? 0);
    const answers = await Promise.allSettled(
      shards.map((shard) => hubStub(this.env, { collection, shard }).deliver({ collection, shard }, from, to, items)),
    );
    let dropped = false;
    answers.forEach((a, i) => {
      // "No sockets": dropped, unless the shard registered again meanwhile (a socket arrived).
      if (a.status === "fulfilled" && a.value === false && (this.registeredAt.get(shards[i]!) ?? 0) === epochs[i])
        dropped = this.shards.delete(shards[i]!) || dropped;
      // A failed forward: that shard sees a gap in the next page and reads the log itself.
      if (a.status === "rejected")
        console.error(`live: forwarding to shard ${shards[i]} failed:`, (a.reason as Error)?.message);
    });
    if (dropped) {
      this.remember("shards", [...this.shards]);
      if (this.head !== null && this.shards.size === 0 && this.liveSockets().length === 0) this.clearHead();
    }
  }

  /** Root without a position: each shard reads the log itself (an account deletion's tombstones). */
  private async nudgeShards(): Promise<void> {
    const collection = this.key!.collection;
    await Promise.allSettled(
      [...this.shards].map((shard) => hubStub(this.env, { collection, shard }).notify({ collection, shard }, null)),
    );
  }

  /** A shard registers with the root, a member's hub with each of its user's teams' hubs (see `registerHub`). */
  private register(): Promise<void> {
    return registerHub(this.env, this.database(), this.key!);
  }

  /** A team's hub: each registered member hub reads the log; those without sockets are dropped. */
  private async nudgeMembers(seq: number | null): Promise<void> {
    const dropped = await nudgeMemberHubs(this.env, this.key!.collection, [...this.members], seq);
    for (const m of dropped) this.members.delete(m);
    if (dropped.length) this.remember("members", [...this.members]);
  }

  /**
   * Sends each change to every live socket that does not have it yet (each frame built once), then
   * records that the sockets have everything up to `position`.
   */
  private fanOut(items: LogPage["items"], position: number): void {
    const live = this.liveSockets().map((ws) => {
      const attachment = this.attachment(ws)!;
      return { ws, attachment, may: this.filterFor(attachment) };
    });
    for (const x of items) {
      const text = JSON.stringify({ type: "change", cursor: cursorAt(x.seq), item: x.item } satisfies LiveServerFrame);
      for (const { ws, attachment, may } of live)
        if (x.seq > attachment.sent && (!may || may(x))) this.trySend(ws, text);
    }
    for (const { ws, attachment } of live)
      if (position > attachment.sent) this.attach(ws, { ...attachment, sent: position });
  }

  private sendPage(ws: WebSocket, page: LogPage): void {
    const a = this.attachment(ws);
    const may = a ? this.filterFor(a) : null;
    for (const x of page.items)
      if (!may || may(x))
        this.trySend(
          ws,
          JSON.stringify({ type: "change", cursor: cursorAt(x.seq), item: x.item } satisfies LiveServerFrame),
        );
  }

  /** The cursor is older than what the log keeps: tell the client to sync again without one, and close (4410). */
  private resync(ws: WebSocket): void {
    this.sendError(
      ws,
      "resync_required",
      "Your cursor is older than the change log keeps deletions: " +
        "sync again without a cursor, then subscribe with the new one.",
    );
    this.closeSocket(ws, CLOSE_RESYNC, "resync required");
  }

  // --- bookkeeping -------------------------------------------------------------------------

  /**
   * The little a hub keeps in storage (its key, the root's shards, the next backstop time): written
   * rarely and never on the fan-out path, since a storage write holds the frames sent after it
   * until it is durable (the output gate).
   */
  private remember(key: string, value: unknown): void {
    this.ctx.storage.kv.put(key, value);
  }

  private bind(key: HubKey): void {
    if (this.key !== null) return;
    this.key = key;
    this.remember("key", key);
  }

  private collection(): Collection {
    const c = this.key ? findCollection(this.key.collection) : undefined;
    if (!c) throw new Error(`live hub bound to no known collection (${JSON.stringify(this.key)})`);
    return c;
  }

  private setHead(position: number): void {
    if (this.head === position) return;
    this.headVersion++;
    this.head = position;
  }

  private clearHead(): void {
    this.headVersion++;
    this.head = null;
  }

  /** A socket left: when no socket is live any more, `head` goes (the next live socket sets it again). */
  private releaseHead(): void {
    if (this.head !== null && this.liveSockets().length === 0 && this.shards.size === 0) this.clearHead();
  }

  /** Closes a socket from the hub's side. */
  private closeSocket(ws: WebSocket, code: number, reason: string): void {
    this.drop(ws, code, reason);
    this.socketClosed();
  }

  private async ensureAlarm(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null)
      await this.ctx.storage.setAlarm(Date.now() + limits.liveHeartbeatCheckSec * 1000);
  }

  private liveSockets(): WebSocket[] {
    return this.openSockets().filter((ws) => this.attachment(ws)!.live);
  }

  private sendError(ws: WebSocket, code: LiveErrorCode, message: string): void {
    this.send(ws, { type: "error", code, message });
  }
}

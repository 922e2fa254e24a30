/**
 * ChatRoom: one Durable Object per room (`idFromName(roomId)`), SQLite-backed. It owns the message
 * log (gapless per-room `seq`, dedupe by `(sender_id, client_id)`), the read positions and the
 * room's WebSockets (Hibernation API). The Worker authenticates and checks D1 membership before it
 * calls in: REST goes through the RPC methods, the upgrade through `fetch()` with the verified
 * identity in internal headers.
 *
 * Consistency with D1: the object's SQLite is the durable log. A message is committed there
 * (synchronously, so seq assignment cannot interleave) and broadcast in the same step, serialized
 * once for all sockets; the output gate releases the frames once the write is durable. What D1
 * needs (the room list's last message, seq and activity time, and read positions) is mirrored in
 * coalesced flushes: at most one every `chatMirrorFlushMs` (the first after a quiet spell at once),
 * one D1 round trip each however many messages it covers, with the push jobs of its messages sent
 * in one `sendBatch`. What a flush still owes lives in SQLite (`unmirrored`: messages whose push job
 * is not queued yet; `unmirrored_deletes`; `reads.mirrored`), and every write makes sure an alarm is
 * due within `chatMirrorRetrySec`, so an eviction between commit and flush only delays it: the
 * alarm finishes the flush. A message leaves `unmirrored` as soon as its job is queued, so a retried
 * flush never queues a push twice. The D1 writes are monotonic, so a retry never moves the listing
 * back. REST callers (send, read, delete) get their answer after the flush that covers their write,
 * so whoever got a 2xx sees it in `GET /v1/rooms`; socket clients do not wait for D1.
 *
 * Sockets belong to a session: each is tagged with its user id and its session id, so ending a
 * session (`endSessions`, called after logout, revocation, password change/reset, account
 * deletion) closes exactly its sockets with 4401, and the heartbeat alarm re-checks in D1 that the
 * sessions of the open sockets still exist (a lost notification still cuts the socket).
 *
 * Floods: a replay sends at most `chatReplayPage` messages, then `more`; `sync` frames spend tokens
 * of a per-socket bucket kept in the attachment; `typing` is forwarded once per user per
 * `chatTypingIntervalSec`. Deleted messages stay in the log as tombstones (seq keeps no gaps).
 */
import { DurableObject } from "cloudflare:workers";
import { limits } from "../../config";
import { primaryDb } from "../../db";
import { newId, nowIso } from "../../lib/ids";
import { mayAttachFile } from "../files";
import type { ChatMessageJob } from "./jobs";
import {
  CLOSE_HEARTBEAT,
  CLOSE_REMOVED,
  CLOSE_SESSION_ENDED,
  type ClientFrame,
  type ErrorFrameCode,
  type Message,
  type ParsedFrame,
  PING_TEXT,
  PONG_TEXT,
  parseClientFrame,
  type SendInput,
  type ServerFrame,
} from "./protocol";
import { fileRefusal, type RoomResult, refusalFrame } from "./refusals";
import { liveMembersAndSessions, type MirrorResult, mirrorFlush, upgradeCheck } from "./service";

/** Internal headers the Worker sets on the upgrade it forwards (after dropping the client's). */
export const INTERNAL_HEADERS = {
  user: "x-outpost-chat-user",
  session: "x-outpost-chat-session",
  room: "x-outpost-chat-room",
  afterSeq: "x-outpost-chat-after-seq",
} as const;

/** The room's Durable Object (one per room id). */
export const roomStub = (env: Env, roomId: string) => env.CHAT_ROOM.get(env.CHAT_ROOM.idFromName(roomId));

/** The tag a socket opened with `sessionId` carries (tags are fixed at accept; user ids are the other tag). */
const sessionTag = (sessionId: string) => `session:${sessionId}`;

/** Per-socket state that must survive hibernation. */
interface Attachment {
  userId: string;
  /** The session whose access token opened the socket: the socket ends with it. */
  sessionId: string;
  /** Last frame received (ms); pings answered by the runtime are read from the auto-response timestamp. */
  lastSeenAt: number;
  /** Highest seq already replayed to this socket, so a broadcast in flight is not delivered twice. */
  replayedTo: number;
  /** Set when the room closed the socket itself, so its close event does not announce presence twice. */
  gone: boolean;
  /** `sync` budget: tokens left (refilled at chatSyncBurst per chatSyncWindowSec) as of `syncAt` (ms). */
  syncTokens: number;
  syncAt: number;
}

type SendChecks = Promise<RoomResult<null>>;

export interface HistoryQuery {
  after?: number | undefined;
  before?: number | undefined;
  limit: number;
}

interface MessageRow extends Record<string, SqlStorageValue> {
  seq: number;
  id: string;
  sender_id: string;
  client_id: string;
  text: string | null;
  file_id: string | null;
  created_at: string;
  /** 1 for a tombstone (text and file_id are then null). */
  deleted: number;
}

const OPEN = 1; // WebSocket.READY_STATE_OPEN

/** How the room mirrors to D1 (from `limits`; tests change it on an instance). */
interface MirrorPolicy {
  /** A flush starts at most this often (ms, on the `now()` clock). */
  everyMs: number;
  /** ...or at once when this many messages are waiting for one. */
  maxPending: number;
  /** Push jobs per `sendBatch` (Queues take up to 100 messages and 256 KB per batch). */
  jobsPerBatch: number;
}

/** A Queue batch stays under 256 KB: jobs are grouped up to this many bytes of JSON. */
const JOB_BATCH_BYTES = 200 * 1024;

export class ChatRoom extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  protected mirrorPolicy: MirrorPolicy = {
    everyMs: limits.chatMirrorFlushMs,
    maxPending: limits.chatMirrorFlushMax,
    jobsPerBatch: 100,
  };
  /** When the last flush started (`now()` clock). In memory: after a restart the first flush runs at once. */
  private lastFlushAt = Number.NEGATIVE_INFINITY;
  /** The flush running now; another one is owed after it when `flushAgain` is set. */
  private flushing: Promise<void> | null = null;
  private flushAgain: "paced" | "now" | null = null;
  private flushTimer: unknown = null;
  /** Flushes started and finished, counted, and the REST callers waiting for the flush that covers their write. */
  private flushesStarted = 0;
  private flushesDone = 0;
  private flushWaiters: { flush: number; resolve: () => void }[] = [];
  /** The alarm as last set or seen (ms); null = none; undefined = not known since this instance started. */
  private alarmAt: number | null | undefined = undefined;
  /** When the heartbeat (socket and session re-check) is due next; 0 after a start, so the first alarm runs it. */
  private heartbeatDue = 0;
  /**
   * Attachments as last written or read, by socket: a broadcast reads every socket's attachment,
   * and reading the stored one is a structured-clone decode per socket per message. Written through in `attach`,
   * so it never disagrees with the stored one; lost with the instance (hibernation), then refilled.
   */
  private attachments = new WeakMap<WebSocket, Attachment>();
  /** `getWebSockets()`, kept from one broadcast to the next; forgotten whenever a socket is accepted, closed or dropped. */
  private socketList: WebSocket[] | null = null;
  /** Messages stored since the last flush started (in memory: only paces the next flush). */
  private unflushed = 0;
  /** The room id, read once from `meta` (it never changes). */
  private boundRoomId: string | null = null;
  /**
   * Each user's frames are handled one after another: a send that awaits a check (rate limit, file
   * access) must not be overtaken by the next frame, or one client's messages would get seqs out of
   * the order it sent them. In memory only: nothing is in flight while the room hibernates.
   */
  private frameChains = new Map<string, Promise<void>>();
  /**
   * Bumped by `disconnectUser`: an upgrade that was checking membership while the user was removed
   * sees the change and refuses. In memory only: an upgrade in flight keeps the object awake.
   */
  private removals = new Map<string, number>();
  /**
   * Bumped by `endSessions`, keyed by user id (all sessions) or session tag: an upgrade that was
   * checking its session while that session ended refuses instead of accepting a socket nobody
   * will close. In memory only, like `removals`.
   */
  private sessionEnds = new Map<string, number>();
  /**
   * When each user's last `typing` was forwarded. In memory: losing it to hibernation or eviction
   * only lets one extra typing frame through, and the room cannot hibernate while frames arrive
   * within the 3-second window anyway. Per user (not per socket), so several sockets of one user
   * share the budget. At most one entry per member who typed while the object was awake.
   */
  private typingAt = new Map<string, number>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS messages (
      seq INTEGER PRIMARY KEY, id TEXT NOT NULL, sender_id TEXT NOT NULL, client_id TEXT NOT NULL,
      text TEXT, file_id TEXT, created_at TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, UNIQUE (sender_id, client_id))`);
    // Rooms created before tombstones existed get the column (a cheap check: column names of an empty result).
    if (!this.sql.exec("SELECT * FROM messages LIMIT 0").columnNames.includes("deleted")) {
      this.sql.exec("ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0");
    }
    this.sql.exec(
      "CREATE TABLE IF NOT EXISTS reads (user_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, mirrored INTEGER NOT NULL DEFAULT 0)",
    );
    // `mirrored`: the read position D1 has. Rooms from before coalesced mirroring get the column at 0:
    // their positions are written to D1 once more by the next flush (max(), so harmlessly).
    if (!this.sql.exec("SELECT * FROM reads LIMIT 0").columnNames.includes("mirrored")) {
      this.sql.exec("ALTER TABLE reads ADD COLUMN mirrored INTEGER NOT NULL DEFAULT 0");
    }
    /** Messages whose flush (D1 mirror and push job) has not finished yet. */
    this.sql.exec("CREATE TABLE IF NOT EXISTS unmirrored (seq INTEGER PRIMARY KEY)");
    /** Deletions whose D1 mirror (the room's lastMessage) has not run yet. */
    this.sql.exec("CREATE TABLE IF NOT EXISTS unmirrored_deletes (seq INTEGER PRIMARY KEY)");
    this.sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    // The protocol's ping is answered by the runtime without waking a hibernated room.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_TEXT, PONG_TEXT));
  }

  // --- RPC (called by the Worker after it checked the caller's membership) ---------------------

  /** A send over REST: as `admit`, answered once the flush that covers a new message has run. */
  async submit(
    roomId: string,
    senderId: string,
    input: SendInput,
  ): Promise<RoomResult<{ message: Message; created: boolean }>> {
    const r = await this.admit(roomId, senderId, input, true);
    if (r.ok && r.value.created) await this.mirrored(r.value.flush);
    return r.ok ? { ok: true, value: { message: r.value.message, created: r.value.created } } : r;
  }

  /** A page of history in seq order; see `HistoryQuery` for the two directions. */
  async history(roomId: string, q: HistoryQuery): Promise<{ items: Message[]; more: boolean }> {
    this.bindRoom(roomId);
    if (q.after !== undefined) {
      const rows = this.rows(
        "SELECT * FROM messages WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?",
        q.after,
        q.before ?? Number.MAX_SAFE_INTEGER,
        q.limit + 1,
      );
      return { items: rows.slice(0, q.limit).map((r) => this.toMessage(r)), more: rows.length > q.limit };
    }
    // Newest page before `before` (or the latest page), returned oldest first.
    const rows = this.rows(
      "SELECT * FROM messages WHERE seq < ? ORDER BY seq DESC LIMIT ?",
      q.before ?? Number.MAX_SAFE_INTEGER,
      q.limit + 1,
    );
    return {
      items: rows
        .slice(0, q.limit)
        .reverse()
        .map((r) => this.toMessage(r)),
      more: rows.length > q.limit,
    };
  }

  /** A read position over REST: as `moveRead`, answered once the flush that covers it has run. */
  async markRead(roomId: string, userId: string, seq: number): Promise<RoomResult<null>> {
    const r = this.moveRead(roomId, userId, seq, true);
    if (!r.ok) return r;
    if (r.value !== null) await this.mirrored(r.value);
    return { ok: true, value: null };
  }

  /** Closes every socket of `userId` with 4403 (removed from the room, or account deleted). */
  async disconnectUser(roomId: string, userId: string, reason: string): Promise<number> {
    this.bindRoom(roomId);
    this.removals.set(userId, (this.removals.get(userId) ?? 0) + 1);
    const sockets = this.ctx.getWebSockets(userId);
    const wasOnline = this.isOnline(userId);
    for (const ws of sockets) this.drop(ws, CLOSE_REMOVED, reason);
    if (wasOnline) this.broadcast({ type: "presence", userId, online: false });
    return sockets.length;
  }

  /**
   * Closes the sockets `userId` opened with the given sessions (or with any session) with 4401:
   * those sessions ended. Found by tag, so hibernated sockets are found too. Returns how many.
   */
  async endSessions(roomId: string, userId: string, sessions: string[] | "all"): Promise<number> {
    this.bindRoom(roomId);
    const keys = sessions === "all" ? [userId] : sessions.map(sessionTag);
    for (const k of keys) this.sessionEnds.set(k, (this.sessionEnds.get(k) ?? 0) + 1);
    const sockets = keys
      .flatMap((k) => this.ctx.getWebSockets(k))
      .filter((ws) => this.attachment(ws)?.userId === userId);
    this.closeSockets(sockets, CLOSE_SESSION_ENDED, "session ended");
    return sockets.length;
  }

  /**
   * Deletes message `seq` (the sender, or the room's owner): it stays in the log as a tombstone, so
   * seq keeps no gaps and a resend of its clientId still finds it. Mirrors the tombstone to D1 when
   * it is the room's last message and tells the sockets `{ type: "deleted", seq }`. Deleting a
   * tombstone again is a no-op success.
   */
  async deleteMessage(roomId: string, seq: number, actorId: string, actorIsOwner: boolean): Promise<RoomResult<null>> {
    this.bindRoom(roomId);
    const row = this.rows("SELECT * FROM messages WHERE seq = ?", seq)[0];
    if (!row) return { ok: false, code: "not_found", detail: "No such message." };
    if (row.sender_id !== actorId && !actorIsOwner)
      return { ok: false, code: "forbidden", detail: "Only the sender or the room's owner can delete a message." };
    if (row.deleted) return { ok: true, value: null };
    // Synchronous: the tombstone, its pending mirror and the broadcast go together.
    this.sql.exec("UPDATE messages SET text = NULL, file_id = NULL, deleted = 1 WHERE seq = ?", seq);
    this.sql.exec("INSERT INTO unmirrored_deletes (seq) VALUES (?) ON CONFLICT (seq) DO NOTHING", seq);
    this.broadcast({ type: "deleted", seq });
    await this.mirrored(this.requestFlush(true));
    return { ok: true, value: null };
  }

  /** Whether message `seq` was deleted (push delivery asks before sending a queued notification). */
  async isDeleted(seq: number): Promise<boolean> {
    return (
      this.sql.exec<{ deleted: number }>("SELECT deleted FROM messages WHERE seq = ?", seq).toArray()[0]?.deleted === 1
    );
  }

  // --- WebSockets --------------------------------------------------------------------------

  /** The upgrade, forwarded by the Worker with the verified identity in `INTERNAL_HEADERS`. */
  override async fetch(request: Request): Promise<Response> {
    const userId = request.headers.get(INTERNAL_HEADERS.user);
    const sessionId = request.headers.get(INTERNAL_HEADERS.session);
    const roomId = request.headers.get(INTERNAL_HEADERS.room);
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket" || !userId || !sessionId || !roomId)
      return new Response(null, { status: 400 });
    this.bindRoom(roomId);
    // The Worker checked membership before calling in, but a removal can land in between (its
    // disconnect would then find no socket to close). Check again here; a removal that commits
    // after this read either bumps `removals` before the accept below or finds the socket after it.
    // The same query checks that the session still exists (a logged-out access token still
    // verifies until it expires), with the same guard against a session ending meanwhile.
    const tag = sessionTag(sessionId);
    const removalsBefore = this.removals.get(userId) ?? 0;
    const endsBefore = [this.sessionEnds.get(userId) ?? 0, this.sessionEnds.get(tag) ?? 0];
    const check = await upgradeCheck(primaryDb(this.env.DB), roomId, userId, sessionId);
    if (!check.member || (this.removals.get(userId) ?? 0) !== removalsBefore)
      return new Response(null, { status: 404 });
    if (
      !check.session ||
      (this.sessionEnds.get(userId) ?? 0) !== endsBefore[0] ||
      (this.sessionEnds.get(tag) ?? 0) !== endsBefore[1]
    )
      return new Response(null, { status: 401 });
    const afterRaw = request.headers.get(INTERNAL_HEADERS.afterSeq);
    const afterSeq = afterRaw === null ? null : Number(afterRaw);

    const pair = new WebSocketPair();
    const client = pair[0];
    const server = pair[1];
    const wasOnline = this.isOnline(userId);
    this.ctx.acceptWebSocket(server, [userId, tag]);
    this.socketList = null;
    // A replay on connect spends one of the socket's sync tokens.
    const replaying = afterSeq !== null && Number.isSafeInteger(afterSeq);
    this.attach(server, {
      userId,
      sessionId,
      lastSeenAt: Date.now(),
      replayedTo: 0,
      gone: false,
      syncTokens: limits.chatSyncBurst - (replaying ? 1 : 0),
      syncAt: this.now(),
    });

    this.sendTo(server, { type: "ready", lastSeq: this.lastSeq(), online: this.onlineUsers() });
    if (replaying) this.replay(server, afterSeq);
    if (!wasOnline) this.broadcast({ type: "presence", userId, online: true }, { exceptUser: userId });
    await this.ensureAlarmBy(Date.now() + limits.chatHeartbeatCheckSec * 1000);
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    const att = this.attachment(ws);
    if (!att || att.gone) return;
    att.lastSeenAt = Date.now();
    this.attach(ws, att);

    const userId = att.userId;
    const parsed = parseClientFrame(data);
    // A new message's checks (rate limit, file) start now, not when its turn comes: one user's
    // frames are still stored in the order they arrived, but the checks' round trips overlap.
    const checks = parsed.ok && parsed.frame.type === "send" ? this.startSendChecks(userId, parsed.frame) : null;
    const run = (this.frameChains.get(userId) ?? Promise.resolve()).then(() =>
      this.processFrame(ws, att, parsed, checks),
    );
    const tail = run.catch(() => undefined);
    this.frameChains.set(userId, tail);
    void tail.then(() => {
      if (this.frameChains.get(userId) === tail) this.frameChains.delete(userId);
    });
    await run;
  }

  private async processFrame(
    ws: WebSocket,
    att: Attachment,
    parsed: ParsedFrame,
    checks: SendChecks | null,
  ): Promise<void> {
    // The socket may have been dropped (removed member, timeout) while this frame waited its turn.
    if (this.attachment(ws)?.gone !== false) return;
    if (!parsed.ok) return this.sendError(ws, parsed.code, parsed.message, parsed.clientId);
    try {
      await this.handleFrame(ws, att, parsed.frame, checks);
    } catch (e) {
      console.error(`chat: ${parsed.frame.type} frame failed:`, (e as Error).message);
      const clientId = parsed.frame.type === "send" ? parsed.frame.clientId : undefined;
      this.sendError(
        ws,
        "internal",
        "That did not work; try again (a send is safe to repeat with the same clientId).",
        clientId,
      );
    }
  }

  private async handleFrame(
    ws: WebSocket,
    att: Attachment,
    frame: ClientFrame,
    checks: SendChecks | null,
  ): Promise<void> {
    switch (frame.type) {
      case "ping":
        return this.sendTo(ws, { type: "pong" });
      case "typing":
        if (this.typingAllowed(att.userId))
          this.broadcast({ type: "typing", userId: att.userId }, { exceptUser: att.userId });
        return;
      case "sync":
        if (!this.takeSyncToken(ws))
          return this.sendError(
            ws,
            "rate_limited",
            `Too many sync frames (at most ${limits.chatSyncBurst} per ${limits.chatSyncWindowSec} s); wait, then sync again or page over REST.`,
          );
        return this.replay(ws, frame.afterSeq);
      case "read": {
        const r = this.moveRead(this.roomId(), att.userId, frame.seq, false);
        if (!r.ok) this.sendTo(ws, refusalFrame(r));
        return;
      }
      case "send": {
        const { type: _type, ...input } = frame;
        return this.socketSend(ws, att.userId, input, checks);
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    this.socketList = null;
    // Complete the closing handshake; 1005/1006 are not codes one may send.
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, "closed");
    } catch {
      // already closed
    }
    this.gone(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.socketList = null;
    this.gone(ws);
  }

  /**
   * The alarm finishes any flush still owed (after an eviction, or a failed flush: retried every
   * `chatMirrorRetrySec`), and runs the heartbeat when it is due (every `chatHeartbeatCheckSec`,
   * and on the first alarm of an instance): closes sockets silent for too long (dead phones send no
   * close), re-checks membership and the sockets' sessions (so a removal or a session end whose
   * RPC got lost still cuts the socket within one period).
   */
  override async alarm(): Promise<void> {
    this.alarmAt = null;
    const now = Date.now();
    if (now >= this.heartbeatDue) {
      this.heartbeatDue = now + limits.chatHeartbeatCheckSec * 1000;
      for (const ws of this.ctx.getWebSockets()) {
        const att = this.attachment(ws);
        if (!att || att.gone) continue;
        const autoPing = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0;
        if (now - Math.max(att.lastSeenAt, autoPing) > limits.chatHeartbeatTimeoutSec * 1000) {
          const wasOnline = this.isOnline(att.userId);
          this.drop(ws, CLOSE_HEARTBEAT, "heartbeat timeout");
          if (wasOnline && !this.isOnline(att.userId))
            this.broadcast({ type: "presence", userId: att.userId, online: false });
        }
      }
      await this.recheckSockets();
    }
    await this.flushNow();
    const pending = this.hasPending();
    const sockets = this.ctx.getWebSockets().length > 0;
    if (pending || sockets) {
      await this.ensureAlarmBy(
        Math.min(
          pending ? Date.now() + limits.chatMirrorRetrySec * 1000 : Number.POSITIVE_INFINITY,
          sockets ? this.heartbeatDue : Number.POSITIVE_INFINITY,
        ),
      );
    }
  }

  // --- internals ---------------------------------------------------------------------------

  /**
   * One D1 round trip (a batch; session ids in chunks under D1's 100 parameters): sockets whose
   * session is gone are closed with 4401, users no longer members with 4403.
   */
  private async recheckSockets(): Promise<void> {
    const open: { ws: WebSocket; att: Attachment }[] = [];
    for (const ws of this.ctx.getWebSockets()) {
      const att = this.attachment(ws);
      if (att && !att.gone && ws.readyState === OPEN) open.push({ ws, att });
    }
    if (open.length === 0) return;
    const sessionIds = [...new Set(open.map((o) => o.att.sessionId).filter((id) => typeof id === "string"))];
    let live: { members: Set<string>; sessions: Set<string> };
    try {
      live = await liveMembersAndSessions(primaryDb(this.env.DB), this.roomId(), sessionIds);
    } catch (e) {
      console.error("chat: socket re-check failed:", (e as Error).message);
      return;
    }
    this.closeSockets(
      open.filter((o) => !live.sessions.has(o.att.sessionId)).map((o) => o.ws),
      CLOSE_SESSION_ENDED,
      "session ended",
    );
    for (const userId of this.onlineUsers()) {
      if (!live.members.has(userId)) await this.disconnectUser(this.roomId(), userId, "no longer a member");
    }
  }

  /** Closes `sockets` from our side; users left with no open socket here are announced offline. */
  private closeSockets(sockets: WebSocket[], code: number, reason: string): void {
    const wereOnline = new Set<string>();
    for (const ws of sockets) {
      const att = this.attachment(ws);
      if (!att || att.gone) continue;
      if (this.isOnline(att.userId)) wereOnline.add(att.userId);
      this.drop(ws, code, reason);
    }
    for (const userId of wereOnline) {
      if (!this.isOnline(userId)) this.broadcast({ type: "presence", userId, online: false });
    }
  }

  /** Whether `userId`'s typing may be forwarded now (once per chatTypingIntervalSec); records it if so. */
  private typingAllowed(userId: string): boolean {
    const now = this.now();
    const window = limits.chatTypingIntervalSec * 1000;
    const last = this.typingAt.get(userId);
    if (last !== undefined && now - last < window) return false;
    this.typingAt.set(userId, now);
    if (this.typingAt.size > 64) {
      for (const [id, at] of this.typingAt) if (now - at >= window) this.typingAt.delete(id);
    }
    return true;
  }

  /** Spends one of the socket's sync tokens (a bucket refilled at chatSyncBurst per chatSyncWindowSec); false when empty. */
  private takeSyncToken(ws: WebSocket): boolean {
    const att = this.attachment(ws);
    if (!att) return false;
    const now = this.now();
    const refill = (Math.max(0, now - att.syncAt) * limits.chatSyncBurst) / (limits.chatSyncWindowSec * 1000);
    const tokens = Math.min(limits.chatSyncBurst, att.syncTokens + refill);
    const allowed = tokens >= 1;
    this.attach(ws, { ...att, syncTokens: allowed ? tokens - 1 : tokens, syncAt: now });
    return allowed;
  }

  /** The clock for rate limits (a method so tests can fix it). */
  protected now(): number {
    return Date.now();
  }

  private async socketSend(ws: WebSocket, userId: string, input: SendInput, checks: SendChecks | null): Promise<void> {
    const r = await this.admit(this.roomId(), userId, input, false, checks);
    if (!r.ok) return this.sendTo(ws, refusalFrame(r, input.clientId));
    // A resend gets the original back on its own socket; a new message reached it via broadcast.
    if (!r.value.created) this.sendTo(ws, { type: "message", message: r.value.message });
  }

  /**
   * A client's send (REST or socket): a clientId this sender already used yields the stored message
   * with no further checks (a retry is not a new send); a new message must pass the sender's rate
   * limit and, with a file, the file check before it is stored. `flush` is the flush that will
   * carry a new message to D1 (see `mirrored`); `waiting`: a caller will wait for it (REST);
   * `checks`: the checks already started for this send (`startSendChecks`).
   */
  private async admit(
    roomId: string,
    senderId: string,
    input: SendInput,
    waiting: boolean,
    checks: SendChecks | null = null,
  ): Promise<RoomResult<{ message: Message; created: boolean; flush: number }>> {
    this.bindRoom(roomId);
    const known = this.findByClientId(senderId, input.clientId);
    if (known) return { ok: true, value: { message: this.toMessage(known), created: false, flush: 0 } };
    const checked = await (checks ?? this.sendChecks(senderId, input));
    if (!checked.ok) return checked;
    // store() looks the clientId up again: a concurrent send with it may have landed meanwhile.
    const stored = this.store(senderId, input);
    if (!stored.created) return { ok: true, value: { ...stored, flush: 0 } };
    this.unflushed++;
    // Same synchronous step as the commit: broadcasts leave in seq order, and nothing is broadcast that is not stored.
    this.broadcast({ type: "message", message: stored.message }, { skipReplayed: stored.message.seq });
    return { ok: true, value: { ...stored, flush: this.requestFlush(waiting) } };
  }

  /** A new message must pass the sender's rate limit and, with a file, the file check. */
  private async sendChecks(senderId: string, input: SendInput): Promise<RoomResult<null>> {
    const { success } = await this.env.CHAT_LIMITER.limit({ key: `send:${senderId}` });
    if (!success) return { ok: false, code: "rate_limited", detail: "Too many messages; slow down." };
    if (input.fileId && !(await mayAttachFile(primaryDb(this.env.DB), senderId, input.fileId))) {
      return { ok: false, ...fileRefusal() };
    }
    return { ok: true, value: null };
  }

  /** Starts the checks of a socket send as it arrives (none for a clientId already stored: a resend). */
  private startSendChecks(senderId: string, input: SendInput): SendChecks | null {
    if (this.findByClientId(senderId, input.clientId)) return null;
    const checks = this.sendChecks(senderId, input);
    // Awaited when the frame's turn comes; a frame whose socket was dropped meanwhile never awaits it.
    checks.catch(() => undefined);
    return checks;
  }

  /**
   * Moves the user's read position forward (never back) and tells the room; D1 gets it with the
   * next flush. Returns that flush (null when the position did not move).
   */
  private moveRead(roomId: string, userId: string, seq: number, waiting: boolean): RoomResult<number | null> {
    this.bindRoom(roomId);
    if (seq > this.lastSeq())
      return { ok: false, code: "validation_failed", detail: "seq is beyond the room's last message." };
    const current =
      this.sql.exec<{ seq: number }>("SELECT seq FROM reads WHERE user_id = ?", userId).toArray()[0]?.seq ?? 0;
    if (seq <= current) return { ok: true, value: null };
    this.sql.exec(
      "INSERT INTO reads (user_id, seq) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET seq = max(seq, excluded.seq)",
      userId,
      seq,
    );
    this.broadcast({ type: "read", userId, seq });
    return { ok: true, value: this.requestFlush(waiting) };
  }

  /** Commits a message, or returns the one this sender already sent with this clientId. Synchronous: no other event interleaves. */
  private store(senderId: string, input: SendInput): { message: Message; created: boolean } {
    const existing = this.findByClientId(senderId, input.clientId);
    if (existing) return { message: this.toMessage(existing), created: false };
    const seq = this.lastSeq() + 1;
    const row: MessageRow = {
      seq,
      id: newId(),
      sender_id: senderId,
      client_id: input.clientId,
      text: input.text ?? null,
      file_id: input.fileId ?? null,
      created_at: nowIso(),
      deleted: 0,
    };
    this.sql.exec(
      "INSERT INTO messages (seq, id, sender_id, client_id, text, file_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      row.seq,
      row.id,
      row.sender_id,
      row.client_id,
      row.text,
      row.file_id,
      row.created_at,
    );
    this.sql.exec("INSERT INTO unmirrored (seq) VALUES (?)", seq);
    // Sending implies having read everything up to one's own message.
    this.sql.exec(
      "INSERT INTO reads (user_id, seq) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET seq = max(seq, excluded.seq)",
      senderId,
      seq,
    );
    return { message: this.toMessage(row), created: true };
  }

  // --- mirroring to D1 -----------------------------------------------------------------------

  /**
   * Called after a write that D1 must get: makes sure an alarm is due soon (so an eviction before
   * the flush only delays it), then starts a flush now when the last one started at least
   * `everyMs` ago (or enough messages wait), else when that time comes. A caller that waits for
   * the flush (REST) does not wait for the pace: its flush starts at once, or right after the
   * one running (group commit). Returns the number of the flush that will cover the write (the
   * next one to start).
   */
  private requestFlush(waiting = false): number {
    void this.ensureAlarmBy(Date.now() + limits.chatMirrorRetrySec * 1000).catch((e) =>
      console.error("chat: setting the flush alarm failed:", (e as Error).message),
    );
    const covering = this.flushesStarted + 1;
    if (this.flushing) {
      if (waiting || this.flushAgain === null) this.flushAgain = waiting ? "now" : "paced";
      return covering;
    }
    const wait = this.lastFlushAt + this.mirrorPolicy.everyMs - this.now();
    if (waiting || wait <= 0 || this.unflushed >= this.mirrorPolicy.maxPending) {
      this.startFlush();
    } else if (this.flushTimer === null) {
      this.flushTimer = this.later(() => {
        this.flushTimer = null;
        if (!this.flushing) this.startFlush();
        else this.flushAgain ??= "paced";
      }, wait);
    }
    return covering;
  }

  /** Runs `fn` after `ms` (a method so tests can hold the flush timer and fire it on their own clock). */
  protected later(fn: () => void, ms: number): unknown {
    return setTimeout(fn, ms);
  }

  protected cancelLater(timer: unknown): void {
    clearTimeout(timer as ReturnType<typeof setTimeout>);
  }

  /** Starts a flush (the caller checked none is running). */
  private startFlush(): void {
    if (this.flushTimer !== null) {
      this.cancelLater(this.flushTimer);
      this.flushTimer = null;
    }
    const number = ++this.flushesStarted;
    this.lastFlushAt = this.now();
    this.unflushed = 0;
    this.flushing = this.flush()
      .catch((e) => console.error("chat: flush failed:", (e as Error).message))
      .finally(() => {
        this.flushing = null;
        this.flushesDone = number;
        const done = this.flushWaiters.filter((w) => w.flush <= number);
        this.flushWaiters = this.flushWaiters.filter((w) => w.flush > number);
        for (const w of done) w.resolve();
        const again = this.flushAgain;
        this.flushAgain = null;
        if (again && this.hasPending()) this.requestFlush(again === "now");
      });
  }

  /** Waits until flush number `flush` has run (successfully or not: a failed one is retried by the alarm). */
  private mirrored(flush: number): Promise<void> {
    if (this.flushesDone >= flush) return Promise.resolve();
    return new Promise((resolve) => this.flushWaiters.push({ flush, resolve }));
  }

  /** Flushes whatever is owed now, ignoring the pace (the alarm). */
  private async flushNow(): Promise<void> {
    if (this.flushing) await this.flushing;
    if (!this.hasPending()) return;
    this.startFlush();
    await this.flushing;
  }

  /**
   * One flush: what is owed is read from SQLite in one synchronous step, written to D1 in one round
   * trip (`mirrorFlush`), then the push jobs of its new messages are queued with `sendBatch`, and
   * each message leaves `unmirrored` as soon as its job is queued (or needs none). A failure leaves
   * the rest owed, for the next flush or the alarm.
   */
  private async flush(): Promise<void> {
    const seqs = this.sql
      .exec<{ seq: number }>("SELECT seq FROM unmirrored ORDER BY seq")
      .toArray()
      .map((r) => r.seq);
    const deletes = this.sql
      .exec<{ seq: number }>("SELECT seq FROM unmirrored_deletes")
      .toArray()
      .map((r) => r.seq);
    const reads = new Map(
      this.sql
        .exec<{ user_id: string; seq: number }>("SELECT user_id, seq FROM reads WHERE seq > mirrored")
        .toArray()
        .map((r) => [r.user_id, r.seq]),
    );
    if (seqs.length === 0 && deletes.length === 0 && reads.size === 0) return;
    const lastRow =
      seqs.length > 0 || deletes.length > 0
        ? this.rows("SELECT * FROM messages ORDER BY seq DESC LIMIT 1")[0]
        : undefined;
    // The log as it is now: a message deleted since it was stored is mirrored as its tombstone and not pushed.
    const messages =
      seqs.length > 0
        ? this.rows(`SELECT * FROM messages WHERE seq IN (SELECT seq FROM unmirrored) ORDER BY seq`).map((r) =>
            this.toMessage(r),
          )
        : [];
    const toPush = messages.filter((m) => !m.deleted);
    let mirror: MirrorResult | null;
    try {
      mirror = await mirrorFlush(primaryDb(this.env.DB), {
        roomId: this.roomId(),
        last: lastRow ? this.toMessage(lastRow) : null,
        reads,
        senders: [...new Set(toPush.map((m) => m.senderId))],
      });
    } catch (e) {
      console.error(`chat: mirroring to D1 failed (${seqs.length} messages), will retry:`, (e as Error).message);
      await this.ensureAlarmBy(Date.now() + limits.chatMirrorRetrySec * 1000);
      return;
    }
    // D1 has it: these reads and deletions are done; so is every message that needs no push.
    for (const [userId, seq] of reads)
      this.sql.exec("UPDATE reads SET mirrored = max(mirrored, ?) WHERE user_id = ?", seq, userId);
    for (const seq of deletes) this.sql.exec("DELETE FROM unmirrored_deletes WHERE seq = ?", seq);
    // Members with a socket here got the message; one deleted while D1 answered is not pushed.
    const online = new Set(this.onlineUsers());
    const deletedMeanwhile = new Set(
      this.sql
        .exec<{ seq: number }>("SELECT seq FROM messages WHERE deleted = 1 AND seq IN (SELECT seq FROM unmirrored)")
        .toArray()
        .map((r) => r.seq),
    );
    const jobs = mirror
      ? toPush
          .filter((m) => !deletedMeanwhile.has(m.seq))
          .map((m) => this.pushJob(m, mirror, online))
          .filter((j) => j.recipients.length > 0)
      : [];
    const queued = new Set(jobs.map((j) => j.seq));
    for (const seq of seqs) if (!queued.has(seq)) this.sql.exec("DELETE FROM unmirrored WHERE seq = ?", seq);
    for (const batch of this.jobBatches(jobs)) {
      try {
        await this.enqueueJobs(batch);
      } catch (e) {
        console.error(`chat: queueing ${batch.length} push jobs failed, will retry:`, (e as Error).message);
        await this.ensureAlarmBy(Date.now() + limits.chatMirrorRetrySec * 1000);
        return;
      }
      // Right after the send, before any other await: a retry never queues these again.
      for (const j of batch) this.sql.exec("DELETE FROM unmirrored WHERE seq = ?", j.seq);
    }
  }

  /** Jobs grouped for `sendBatch`: at most `jobsPerBatch` and about JOB_BATCH_BYTES of JSON each. */
  private jobBatches(jobs: ChatMessageJob[]): ChatMessageJob[][] {
    const out: ChatMessageJob[][] = [];
    let current: ChatMessageJob[] = [];
    let bytes = 0;
    for (const j of jobs) {
      const size = JSON.stringify(j).length;
      if (current.length > 0 && (current.length >= this.mirrorPolicy.jobsPerBatch || bytes + size > JOB_BATCH_BYTES)) {
        out.push(current);
        current = [];
        bytes = 0;
      }
      current.push(j);
      bytes += size;
    }
    if (current.length > 0) out.push(current);
    return out;
  }

  /** The push job of a message: members with no open socket here, never the sender. */
  private pushJob(message: Message, m: MirrorResult, online: Set<string>): ChatMessageJob {
    return {
      type: "chat.message",
      roomId: message.roomId,
      roomName: m.name,
      roomKind: m.kind,
      seq: message.seq,
      messageId: message.id,
      senderId: message.senderId,
      senderName: m.senderNames.get(message.senderId) ?? null,
      text: message.text,
      hasFile: message.fileId !== null,
      recipients: m.memberIds.filter((id) => id !== message.senderId && !online.has(id)),
    };
  }

  /** Sends jobs to the JOBS queue in one call (a method so tests can observe it). */
  protected async enqueueJobs(jobs: ChatMessageJob[]): Promise<void> {
    await this.env.JOBS.sendBatch(jobs.map((body) => ({ body, contentType: "json" as const })));
  }

  /** Makes sure the alarm fires at `at` (ms) or earlier. */
  private async ensureAlarmBy(at: number): Promise<void> {
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (this.alarmAt !== null && this.alarmAt <= at) return;
    this.alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  /**
   * Sends the messages after `afterSeq`, in order, at most `chatReplayPage` of them; when more
   * remain, ends with `{ type: "more", afterSeq }` and the client pages on with another `sync`.
   * Synchronous, so nothing interleaves. (The runtime exposes no `bufferedAmount` on server-side
   * sockets, so the page cap and the sync budget are what bound the bytes one frame can queue.)
   */
  private replay(ws: WebSocket, afterSeq: number): void {
    const page = limits.chatReplayPage;
    const rows = this.rows("SELECT * FROM messages WHERE seq > ? ORDER BY seq LIMIT ?", afterSeq, page + 1);
    const sent = rows.slice(0, page);
    for (const r of sent) this.sendTo(ws, { type: "message", message: this.toMessage(r) });
    const last = sent.at(-1)?.seq;
    if (last !== undefined && rows.length > page) this.sendTo(ws, { type: "more", afterSeq: last });
    // What this socket now has of the log: what was sent, or (nothing to send) what the client said
    // it has, but never beyond the log, or live messages after it would be skipped.
    const upTo = last ?? Math.min(afterSeq, this.lastSeq());
    const att = this.attachment(ws);
    if (att && upTo > att.replayedTo) this.attach(ws, { ...att, replayedTo: upTo });
  }

  /** Serialized once, sent to every socket. A socket that closed and whose close event has not run yet refuses the send (caught in trySend). */
  private broadcast(frame: ServerFrame, opts: { exceptUser?: string; skipReplayed?: number } = {}): void {
    const text = JSON.stringify(frame);
    for (const ws of this.sockets()) {
      const att = this.attachment(ws);
      if (!att || att.gone) continue;
      if (opts.exceptUser !== undefined && att.userId === opts.exceptUser) continue;
      if (opts.skipReplayed !== undefined && att.replayedTo >= opts.skipReplayed) continue;
      this.trySend(ws, text);
    }
  }

  private sendTo(ws: WebSocket, frame: ServerFrame): void {
    this.trySend(ws, JSON.stringify(frame));
  }

  private sendError(ws: WebSocket, code: ErrorFrameCode, message: string, clientId?: string): void {
    this.sendTo(ws, { type: "error", code, message, ...(clientId !== undefined ? { clientId } : {}) });
  }

  private trySend(ws: WebSocket, text: string): void {
    try {
      ws.send(text);
    } catch {
      // The socket died between the check and the send; its close event cleans up.
    }
  }

  /** Closes a socket from our side and marks it, so its close event is not reported again. */
  private drop(ws: WebSocket, code: number, reason: string): void {
    this.socketList = null;
    const att = this.attachment(ws);
    if (att) this.attach(ws, { ...att, gone: true });
    try {
      ws.close(code, reason);
    } catch {
      // already closed
    }
  }

  /** A socket closed or failed: announce the user offline when it was their last one here. */
  private gone(ws: WebSocket): void {
    const att = this.attachment(ws);
    if (!att || att.gone) return;
    this.attach(ws, { ...att, gone: true });
    if (!this.isOnline(att.userId)) this.broadcast({ type: "presence", userId: att.userId, online: false });
  }

  /** Users with at least one open socket here (CLOSING sockets and ones we dropped do not count). */
  private onlineUsers(): string[] {
    const users = new Set<string>();
    for (const ws of this.sockets()) {
      const att = this.attachment(ws);
      if (att && !att.gone && ws.readyState === OPEN) users.add(att.userId);
    }
    return [...users];
  }

  private isOnline(userId: string): boolean {
    return this.ctx.getWebSockets(userId).some((ws) => ws.readyState === OPEN && this.attachment(ws)?.gone === false);
  }

  private attachment(ws: WebSocket): Attachment | null {
    const cached = this.attachments.get(ws);
    if (cached) return cached;
    const stored = (ws.deserializeAttachment() as Attachment | null) ?? null;
    if (stored) this.attachments.set(ws, stored);
    return stored;
  }

  private attach(ws: WebSocket, att: Attachment): void {
    ws.serializeAttachment(att);
    this.attachments.set(ws, att);
  }

  private rows(query: string, ...bindings: SqlStorageValue[]): MessageRow[] {
    return this.sql.exec<MessageRow>(query, ...bindings).toArray();
  }

  private findByClientId(senderId: string, clientId: string): MessageRow | undefined {
    return this.rows("SELECT * FROM messages WHERE sender_id = ? AND client_id = ?", senderId, clientId)[0];
  }

  private lastSeq(): number {
    return this.sql.exec<{ s: number }>("SELECT coalesce(max(seq), 0) AS s FROM messages").one().s;
  }

  private sockets(): WebSocket[] {
    this.socketList ??= this.ctx.getWebSockets();
    return this.socketList;
  }

  /** Whether a flush owes D1 anything: messages (with their push jobs), deletions, read positions. */
  private hasPending(): boolean {
    return (
      this.sql
        .exec<{ p: number }>(
          "SELECT EXISTS (SELECT 1 FROM unmirrored) OR EXISTS (SELECT 1 FROM unmirrored_deletes) OR EXISTS (SELECT 1 FROM reads WHERE seq > mirrored) AS p",
        )
        .one().p === 1
    );
  }

  /** The room id is the object's name; remembered so messages and alarms can carry it. */
  private bindRoom(roomId: string): void {
    if (this.boundRoomId === roomId) return;
    this.sql.exec("INSERT INTO meta (key, value) VALUES ('room_id', ?) ON CONFLICT (key) DO NOTHING", roomId);
    this.boundRoomId = this.roomId();
  }

  private roomId(): string {
    if (this.boundRoomId) return this.boundRoomId;
    const row = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'room_id'").toArray()[0];
    if (!row) throw new Error("chat room used before it was bound to a room id");
    this.boundRoomId = row.value;
    return row.value;
  }

  private toMessage(r: MessageRow): Message {
    const m: Message = {
      id: r.id,
      roomId: this.roomId(),
      seq: r.seq,
      clientId: r.client_id,
      senderId: r.sender_id,
      text: r.text,
      fileId: r.file_id,
      createdAt: r.created_at,
    };
    return r.deleted ? { ...m, text: null, fileId: null, deleted: true } : m;
  }
}

/**
 * ChatRoom: one Durable Object per room (`idFromName(roomId)`), SQLite-backed. It owns the message
 * log (gapless per-room `seq`, dedupe by `(sender_id, client_id)`), the read positions and the
 * room's WebSockets (Hibernation API). The Worker authenticates and checks D1 membership before it
 * calls in: REST goes through the RPC methods, the upgrade through `fetch()` with the verified
 * identity in internal headers.
 *
 * Consistency with D1: a message is first committed to the object's SQLite (synchronously, so seq
 * assignment cannot interleave), then mirrored to D1 (`rooms.last_*`, the sender's read position),
 * and only after that mirror is it broadcast and acknowledged. So whoever sees a message — a
 * socket, or the sender's 201 — also sees it in `GET /v1/rooms`. Mirrors run one at a time in seq
 * order (`publishing` chain), and the D1 writes are monotonic, so a late mirror never moves the
 * listing back. The message log stays the source of truth: if D1 is down the message is still
 * stored and broadcast, its seq stays in `unmirrored`, and the alarm retries the mirror and the
 * push job until they succeed (also after a crash between store and mirror).
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
import { enqueue } from "../../lifecycle";
import { mayAttachFile } from "../files";
import { fileRefusal, refusalFrame, type RoomResult } from "./boundary";
import type { ChatMessageJob } from "./jobs";
import { newId, nowIso } from "../../lib/ids";
import {
  CLOSE_HEARTBEAT,
  CLOSE_REMOVED,
  CLOSE_SESSION_ENDED,
  type ClientFrame,
  type ErrorFrameCode,
  type Message,
  parseClientFrame,
  PING_TEXT,
  PONG_TEXT,
  type SendInput,
  type ServerFrame,
} from "./protocol";
import { liveMembersAndSessions, type MirrorResult, mirrorMessage, mirrorRead, mirrorTombstone, upgradeCheck } from "./service";

/** Internal headers the Worker sets on the upgrade it forwards (after dropping the client's). */
export const INTERNAL_HEADERS = { user: "x-outpost-chat-user", session: "x-outpost-chat-session", room: "x-outpost-chat-room", afterSeq: "x-outpost-chat-after-seq" } as const;

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

export class ChatRoom extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** Mirrors and fan-outs run one after another, in seq order. */
  private publishing: Promise<void> = Promise.resolve();
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
    this.sql.exec("CREATE TABLE IF NOT EXISTS reads (user_id TEXT PRIMARY KEY, seq INTEGER NOT NULL)");
    this.sql.exec("CREATE TABLE IF NOT EXISTS unmirrored (seq INTEGER PRIMARY KEY)");
    /** Deletions whose D1 mirror (the room's lastMessage) has not succeeded yet; the alarm retries them. */
    this.sql.exec("CREATE TABLE IF NOT EXISTS unmirrored_deletes (seq INTEGER PRIMARY KEY)");
    this.sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    // The protocol's ping is answered by the runtime without waking a hibernated room.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_TEXT, PONG_TEXT));
  }

  // --- RPC (called by the Worker after it checked the caller's membership) ---------------------

  /**
   * The only way a message gets in: a client's send (REST or socket). A clientId this sender already used yields the stored message
   * with no further checks (a retry is not a new send); a new message must pass the sender's rate
   * limit and, with a file, the file check before it is stored.
   */
  async submit(roomId: string, senderId: string, input: SendInput): Promise<RoomResult<{ message: Message; created: boolean }>> {
    this.bindRoom(roomId);
    const known = this.findByClientId(senderId, input.clientId);
    if (known) return { ok: true, value: { message: this.toMessage(known), created: false } };
    const { success } = await this.env.CHAT_LIMITER.limit({ key: `send:${senderId}` });
    if (!success) return { ok: false, code: "rate_limited", detail: "Too many messages; slow down." };
    if (input.fileId && !(await mayAttachFile(primaryDb(this.env.DB), senderId, input.fileId))) {
      return { ok: false, ...fileRefusal() };
    }
    // store() looks the clientId up again: a concurrent send with it may have landed meanwhile.
    const result = this.store(senderId, input);
    if (result.created) await this.publish(result.message);
    return { ok: true, value: result };
  }

  /** A page of history in seq order; see `HistoryQuery` for the two directions. */
  async history(roomId: string, q: HistoryQuery): Promise<{ items: Message[]; more: boolean }> {
    this.bindRoom(roomId);
    if (q.after !== undefined) {
      const rows = this.rows("SELECT * FROM messages WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?", q.after, q.before ?? Number.MAX_SAFE_INTEGER, q.limit + 1);
      return { items: rows.slice(0, q.limit).map((r) => this.toMessage(r)), more: rows.length > q.limit };
    }
    // Newest page before `before` (or the latest page), returned oldest first.
    const rows = this.rows("SELECT * FROM messages WHERE seq < ? ORDER BY seq DESC LIMIT ?", q.before ?? Number.MAX_SAFE_INTEGER, q.limit + 1);
    return { items: rows.slice(0, q.limit).reverse().map((r) => this.toMessage(r)), more: rows.length > q.limit };
  }

  /** Moves the user's read position forward (never back), mirrors it to D1, tells the room. */
  async markRead(roomId: string, userId: string, seq: number): Promise<RoomResult<null>> {
    this.bindRoom(roomId);
    if (seq > this.lastSeq()) return { ok: false, code: "validation_failed", detail: "seq is beyond the room's last message." };
    const current = this.sql.exec<{ seq: number }>("SELECT seq FROM reads WHERE user_id = ?", userId).toArray()[0]?.seq ?? 0;
    if (seq <= current) return { ok: true, value: null };
    // D1 first: if it fails, the position has not moved here either, so a retry is not a no-op.
    await mirrorRead(primaryDb(this.env.DB), roomId, userId, seq);
    this.sql.exec("INSERT INTO reads (user_id, seq) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET seq = max(seq, excluded.seq)", userId, seq);
    this.broadcast({ type: "read", userId, seq });
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
    const sockets = keys.flatMap((k) => this.ctx.getWebSockets(k)).filter((ws) => this.attachment(ws)?.userId === userId);
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
    if (row.sender_id !== actorId && !actorIsOwner) return { ok: false, code: "forbidden", detail: "Only the sender or the room's owner can delete a message." };
    if (row.deleted) return { ok: true, value: null };
    // Synchronous: the tombstone and its pending mirror commit together.
    this.sql.exec("UPDATE messages SET text = NULL, file_id = NULL, deleted = 1 WHERE seq = ?", seq);
    this.sql.exec("INSERT INTO unmirrored_deletes (seq) VALUES (?) ON CONFLICT (seq) DO NOTHING", seq);
    // Behind the mirrors already queued (this message's own included), so the listing ends on the tombstone.
    const run = this.publishing.then(() => this.mirrorDeletion(seq, true));
    this.publishing = run.catch(() => undefined);
    await run;
    return { ok: true, value: null };
  }

  /** Whether message `seq` was deleted (push delivery asks before sending a queued notification). */
  async isDeleted(seq: number): Promise<boolean> {
    return this.sql.exec<{ deleted: number }>("SELECT deleted FROM messages WHERE seq = ?", seq).toArray()[0]?.deleted === 1;
  }

  // --- WebSockets --------------------------------------------------------------------------

  /** The upgrade, forwarded by the Worker with the verified identity in `INTERNAL_HEADERS`. */
  override async fetch(request: Request): Promise<Response> {
    const userId = request.headers.get(INTERNAL_HEADERS.user);
    const sessionId = request.headers.get(INTERNAL_HEADERS.session);
    const roomId = request.headers.get(INTERNAL_HEADERS.room);
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket" || !userId || !sessionId || !roomId) return new Response(null, { status: 400 });
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
    if (!check.member || (this.removals.get(userId) ?? 0) !== removalsBefore) return new Response(null, { status: 404 });
    if (!check.session || (this.sessionEnds.get(userId) ?? 0) !== endsBefore[0] || (this.sessionEnds.get(tag) ?? 0) !== endsBefore[1]) return new Response(null, { status: 401 });
    const afterRaw = request.headers.get(INTERNAL_HEADERS.afterSeq);
    const afterSeq = afterRaw === null ? null : Number(afterRaw);

    const pair = new WebSocketPair();
    const client = pair[0];
    const server = pair[1];
    const wasOnline = this.isOnline(userId);
    this.ctx.acceptWebSocket(server, [userId, tag]);
    // A replay on connect spends one of the socket's sync tokens.
    const replaying = afterSeq !== null && Number.isSafeInteger(afterSeq);
    this.attach(server, { userId, sessionId, lastSeenAt: Date.now(), replayedTo: 0, gone: false, syncTokens: limits.chatSyncBurst - (replaying ? 1 : 0), syncAt: this.now() });

    this.sendTo(server, { type: "ready", lastSeq: this.lastSeq(), online: this.onlineUsers() });
    if (replaying) this.replay(server, afterSeq);
    if (!wasOnline) this.broadcast({ type: "presence", userId, online: true }, { exceptUser: userId });
    await this.ensureAlarm();
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    const att = this.attachment(ws);
    if (!att || att.gone) return;
    att.lastSeenAt = Date.now();
    this.attach(ws, att);

    const userId = att.userId;
    const run = (this.frameChains.get(userId) ?? Promise.resolve()).then(() => this.processFrame(ws, att, data));
    const tail = run.catch(() => undefined);
    this.frameChains.set(userId, tail);
    void tail.then(() => {
      if (this.frameChains.get(userId) === tail) this.frameChains.delete(userId);
    });
    await run;
  }

  private async processFrame(ws: WebSocket, att: Attachment, data: string | ArrayBuffer): Promise<void> {
    // The socket may have been dropped (removed member, timeout) while this frame waited its turn.
    if (this.attachment(ws)?.gone !== false) return;
    const parsed = parseClientFrame(data);
    if (!parsed.ok) return this.sendError(ws, parsed.code, parsed.message, parsed.clientId);
    try {
      await this.handleFrame(ws, att, parsed.frame);
    } catch (e) {
      console.error(`chat: ${parsed.frame.type} frame failed:`, (e as Error).message);
      const clientId = parsed.frame.type === "send" ? parsed.frame.clientId : undefined;
      this.sendError(ws, "internal", "That did not work; try again (a send is safe to repeat with the same clientId).", clientId);
    }
  }

  private async handleFrame(ws: WebSocket, att: Attachment, frame: ClientFrame): Promise<void> {
    switch (frame.type) {
      case "ping":
        return this.sendTo(ws, { type: "pong" });
      case "typing":
        if (this.typingAllowed(att.userId)) this.broadcast({ type: "typing", userId: att.userId }, { exceptUser: att.userId });
        return;
      case "sync":
        if (!this.takeSyncToken(ws)) return this.sendError(ws, "rate_limited", `Too many sync frames (at most ${limits.chatSyncBurst} per ${limits.chatSyncWindowSec} s); wait, then sync again or page over REST.`);
        return this.replay(ws, frame.afterSeq);
      case "read": {
        const r = await this.markRead(this.roomId(), att.userId, frame.seq);
        if (!r.ok) this.sendTo(ws, refusalFrame(r));
        return;
      }
      case "send": {
        const { type: _type, ...input } = frame;
        return this.socketSend(ws, att.userId, input);
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    // Complete the closing handshake; 1005/1006 are not codes one may send.
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, "closed");
    } catch {
      // already closed
    }
    this.gone(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.gone(ws);
  }

  /**
   * Heartbeat: closes sockets silent for too long (dead phones send no close), re-checks membership
   * and the sockets' sessions (so a removal or a session end whose RPC got lost still cuts the
   * socket within one period), retries mirrors.
   */
  override async alarm(): Promise<void> {
    const now = Date.now();
    for (const ws of this.ctx.getWebSockets()) {
      const att = this.attachment(ws);
      if (!att || att.gone) continue;
      const autoPing = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0;
      if (now - Math.max(att.lastSeenAt, autoPing) > limits.chatHeartbeatTimeoutSec * 1000) {
        const wasOnline = this.isOnline(att.userId);
        this.drop(ws, CLOSE_HEARTBEAT, "heartbeat timeout");
        if (wasOnline && !this.isOnline(att.userId)) this.broadcast({ type: "presence", userId: att.userId, online: false });
      }
    }
    await this.recheckSockets();
    await this.retryUnmirrored();
    await this.retryUnmirroredDeletes();
    if (this.ctx.getWebSockets().length > 0 || this.unmirroredCount() > 0) {
      await this.ctx.storage.setAlarm(Date.now() + limits.chatHeartbeatCheckSec * 1000);
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
    this.closeSockets(open.filter((o) => !live.sessions.has(o.att.sessionId)).map((o) => o.ws), CLOSE_SESSION_ENDED, "session ended");
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

  private async socketSend(ws: WebSocket, userId: string, input: SendInput): Promise<void> {
    const r = await this.submit(this.roomId(), userId, input);
    if (!r.ok) return this.sendTo(ws, refusalFrame(r, input.clientId));
    // A resend gets the original back on its own socket; a new message reached it via broadcast.
    if (!r.value.created) this.sendTo(ws, { type: "message", message: r.value.message });
  }

  /** Commits a message, or returns the one this sender already sent with this clientId. Synchronous: no other event interleaves. */
  private store(senderId: string, input: SendInput): { message: Message; created: boolean } {
    const existing = this.findByClientId(senderId, input.clientId);
    if (existing) return { message: this.toMessage(existing), created: false };
    const seq = this.lastSeq() + 1;
    const row: MessageRow = { seq, id: newId(), sender_id: senderId, client_id: input.clientId, text: input.text ?? null, file_id: input.fileId ?? null, created_at: nowIso(), deleted: 0 };
    this.sql.exec(
      "INSERT INTO messages (seq, id, sender_id, client_id, text, file_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      row.seq, row.id, row.sender_id, row.client_id, row.text, row.file_id, row.created_at,
    );
    this.sql.exec("INSERT INTO unmirrored (seq) VALUES (?)", seq);
    // Sending implies having read everything up to one's own message.
    this.sql.exec("INSERT INTO reads (user_id, seq) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET seq = max(seq, excluded.seq)", senderId, seq);
    return { message: this.toMessage(row), created: true };
  }

  /** Queues the mirror + broadcast + push of a new message behind the ones before it. */
  private publish(message: Message): Promise<void> {
    const run = this.publishing.then(() => this.mirrorAndFanOut(message, true));
    this.publishing = run.catch(() => undefined);
    return run;
  }

  private async mirrorAndFanOut(stored: Message, broadcast: boolean): Promise<void> {
    if (!this.isUnmirrored(stored.seq)) return;
    // The message may have been deleted since it was stored: mirror and show what the log holds now.
    const row = this.rows("SELECT * FROM messages WHERE seq = ?", stored.seq)[0];
    const message = row ? this.toMessage(row) : stored;
    let mirrored: MirrorResult | null = null;
    try {
      mirrored = await mirrorMessage(primaryDb(this.env.DB), message);
    } catch (e) {
      console.error(`chat: mirroring seq ${message.seq} to D1 failed, will retry:`, (e as Error).message);
    }
    if (broadcast) this.broadcast({ type: "message", message }, { skipReplayed: message.seq });
    if (!mirrored) return this.ensureAlarm();
    try {
      // A deleted message is not pushed.
      if (!message.deleted) await this.enqueueJob(this.pushJob(message, mirrored));
      this.sql.exec("DELETE FROM unmirrored WHERE seq = ?", message.seq);
    } catch (e) {
      console.error(`chat: enqueueing push for seq ${message.seq} failed, will retry:`, (e as Error).message);
      await this.ensureAlarm();
    }
  }

  /** The push job: members with no open socket here, never the sender. */
  private pushJob(message: Message, m: MirrorResult): ChatMessageJob {
    const online = new Set(this.onlineUsers());
    return {
      type: "chat.message",
      roomId: message.roomId,
      roomName: m.name,
      roomKind: m.kind,
      seq: message.seq,
      messageId: message.id,
      senderId: message.senderId,
      senderName: m.senderName,
      text: message.text,
      hasFile: message.fileId !== null,
      recipients: m.memberIds.filter((id) => id !== message.senderId && !online.has(id)),
    };
  }

  /** Sends a job to the JOBS queue (a method so tests can observe it). */
  protected async enqueueJob(job: ChatMessageJob): Promise<void> {
    await enqueue(this.env, job);
  }

  private async retryUnmirrored(): Promise<void> {
    const seqs = this.sql.exec<{ seq: number }>("SELECT seq FROM unmirrored ORDER BY seq").toArray();
    for (const { seq } of seqs) {
      const row = this.rows("SELECT * FROM messages WHERE seq = ?", seq)[0];
      if (!row) {
        this.sql.exec("DELETE FROM unmirrored WHERE seq = ?", seq);
        continue;
      }
      const message = this.toMessage(row);
      const run = this.publishing.then(() => this.mirrorAndFanOut(message, false));
      this.publishing = run.catch(() => undefined);
      await run;
    }
  }

  /** Mirrors a tombstone to D1 (retried by the alarm until it succeeds), then tells the sockets. */
  private async mirrorDeletion(seq: number, broadcast: boolean): Promise<void> {
    const row = this.rows("SELECT * FROM messages WHERE seq = ?", seq)[0];
    if (row) {
      try {
        await mirrorTombstone(primaryDb(this.env.DB), this.toMessage(row));
        this.sql.exec("DELETE FROM unmirrored_deletes WHERE seq = ?", seq);
      } catch (e) {
        console.error(`chat: mirroring the deletion of seq ${seq} to D1 failed, will retry:`, (e as Error).message);
        await this.ensureAlarm();
      }
    } else {
      this.sql.exec("DELETE FROM unmirrored_deletes WHERE seq = ?", seq);
    }
    if (broadcast) this.broadcast({ type: "deleted", seq });
  }

  private async retryUnmirroredDeletes(): Promise<void> {
    const seqs = this.sql.exec<{ seq: number }>("SELECT seq FROM unmirrored_deletes ORDER BY seq").toArray();
    for (const { seq } of seqs) {
      const run = this.publishing.then(() => this.mirrorDeletion(seq, false));
      this.publishing = run.catch(() => undefined);
      await run;
    }
  }

  private async ensureAlarm(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + limits.chatHeartbeatCheckSec * 1000);
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

  private broadcast(frame: ServerFrame, opts: { exceptUser?: string; skipReplayed?: number } = {}): void {
    const text = JSON.stringify(frame);
    for (const ws of this.ctx.getWebSockets()) {
      const att = this.attachment(ws);
      if (!att || att.gone || ws.readyState !== OPEN) continue;
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
    for (const ws of this.ctx.getWebSockets()) {
      const att = this.attachment(ws);
      if (att && !att.gone && ws.readyState === OPEN) users.add(att.userId);
    }
    return [...users];
  }

  private isOnline(userId: string): boolean {
    return this.ctx.getWebSockets(userId).some((ws) => ws.readyState === OPEN && this.attachment(ws)?.gone === false);
  }

  private attachment(ws: WebSocket): Attachment | null {
    return (ws.deserializeAttachment() as Attachment | null) ?? null;
  }

  private attach(ws: WebSocket, att: Attachment): void {
    ws.serializeAttachment(att);
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

  private isUnmirrored(seq: number): boolean {
    return this.sql.exec("SELECT 1 FROM unmirrored WHERE seq = ?", seq).toArray().length > 0;
  }

  /** Mirrors still owed to D1: messages (with their push job) and deletions. */
  private unmirroredCount(): number {
    return this.sql.exec<{ n: number }>("SELECT (SELECT count(*) FROM unmirrored) + (SELECT count(*) FROM unmirrored_deletes) AS n").one().n;
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
    const m: Message = { id: r.id, roomId: this.roomId(), seq: r.seq, clientId: r.client_id, senderId: r.sender_id, text: r.text, fileId: r.file_id, createdAt: r.created_at };
    return r.deleted ? { ...m, text: null, fileId: null, deleted: true } : m;
  }
}

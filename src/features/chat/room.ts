/**
 * ChatRoom: one Durable Object per room (`idFromName(roomId)`), SQLite-backed: the message log (gapless `seq`,
 * dedupe by sender and clientId), read positions and the room's sockets. See docs/architecture.md#chat-rooms.
 */
import { limits } from "../../config";
import { primaryDb } from "../../db";
import { CLOSE_HEARTBEAT, CLOSE_SESSION_ENDED, type SocketAttachment } from "../../lib/sockets";
import { mayAttachFile } from "../files";
import {
  CLOSE_REMOVED,
  type ClientFrame,
  type ErrorFrameCode,
  type Message,
  type ParsedFrame,
  parseClientFrame,
  type SendInput,
  type ServerFrame,
} from "./protocol";
import { fileRefusal, type RoomResult, refusalFrame } from "./refusals";
import type { HistoryQuery } from "./room-log";
import { RoomMirror } from "./room-mirror";
import { liveMembersAndSessions, upgradeCheck } from "./service";

export type { HistoryQuery } from "./room-log";

/** Internal headers the Worker sets on the upgrade it forwards (after dropping the client's). */
export const INTERNAL_HEADERS = {
  user: "x-outpost-chat-user",
  session: "x-outpost-chat-session",
  room: "x-outpost-chat-room",
  afterSeq: "x-outpost-chat-after-seq",
} as const;

/** The room's Durable Object (one per room id). */
export const roomStub = (env: Env, roomId: string) => env.CHAT_ROOM.get(env.CHAT_ROOM.idFromName(roomId));

/** Per-socket state that must survive hibernation (`gone` also keeps a close from announcing presence twice). */
interface Attachment extends SocketAttachment {
  /** Highest seq already replayed to this socket, so a broadcast in flight is not delivered twice. */
  replayedTo: number;
}

type SendChecks = Promise<RoomResult<null>>;

export class ChatRoom extends RoomMirror<Attachment> {
  /** When the heartbeat (socket and session re-check) is due next; 0 after a start, so the first alarm runs it. */
  private heartbeatDue = 0;
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
   * When each user's last `typing` was forwarded. In memory: losing it to hibernation or eviction
   * only lets one extra typing frame through, and the room cannot hibernate while frames arrive
   * within the 3-second window anyway. Per user (not per socket), so several sockets of one user
   * share the budget. At most one entry per member who typed while the object was awake.
   */
  private typingAt = new Map<string, number>();
  /**
   * Each user's `sync` budget: tokens left (refilled at chatSyncBurst per chatSyncWindowSec) as of `at`
   * (ms). Per user, so several sockets of one user share it. In memory, like `typingAt`: the object
   * hibernates only after a quiet spell, and a quiet window refills the bucket anyway.
   */
  private syncBudgets = new Map<string, { tokens: number; at: number }>();

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
    this.log.bind(roomId);
    return this.log.history(q);
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
    this.log.bind(roomId);
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
    this.log.bind(roomId);
    const sockets = this.endedSessionSockets(userId, sessions);
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
    this.log.bind(roomId);
    const message = this.log.at(seq);
    if (!message) return { ok: false, code: "not_found", detail: "No such message." };
    if (message.senderId !== actorId && !actorIsOwner)
      return { ok: false, code: "forbidden", detail: "Only the sender or the room's owner can delete a message." };
    if (message.deleted) return { ok: true, value: null };
    // Synchronous: the tombstone, its pending mirror and the broadcast go together.
    this.log.tombstone(seq);
    this.broadcast({ type: "deleted", seq });
    await this.mirrored(this.requestFlush(true));
    return { ok: true, value: null };
  }

  /** Whether message `seq` was deleted (push delivery asks before sending a queued notification). */
  async isDeleted(seq: number): Promise<boolean> {
    return this.log.isDeleted(seq);
  }

  // --- WebSockets --------------------------------------------------------------------------

  /** The upgrade, forwarded by the Worker with the verified identity in `INTERNAL_HEADERS`. */
  override async fetch(request: Request): Promise<Response> {
    const userId = request.headers.get(INTERNAL_HEADERS.user);
    const sessionId = request.headers.get(INTERNAL_HEADERS.session);
    const roomId = request.headers.get(INTERNAL_HEADERS.room);
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket" || !userId || !sessionId || !roomId)
      return new Response(null, { status: 400 });
    this.log.bind(roomId);
    // The Worker checked membership before calling in, but a removal can land in between (its
    // disconnect would then find no socket to close). Check again here; a removal that commits
    // after this read either bumps `removals` before the accept below or finds the socket after it.
    // The same query checks that the session still exists (a logged-out access token still
    // verifies until it expires), with the same guard against a session ending meanwhile.
    const removalsBefore = this.removals.get(userId) ?? 0;
    const sessionEnded = this.sessionEnds.watch(userId, sessionId);
    const check = await upgradeCheck(primaryDb(this.env.DB), roomId, userId, sessionId);
    if (!check.member || (this.removals.get(userId) ?? 0) !== removalsBefore)
      return new Response(null, { status: 404 });
    if (!check.session || sessionEnded()) return new Response(null, { status: 401 });
    const afterRaw = request.headers.get(INTERNAL_HEADERS.afterSeq);
    const afterSeq = afterRaw === null ? null : Number(afterRaw);

    const pair = new WebSocketPair();
    const client = pair[0];
    const server = pair[1];
    const wasOnline = this.isOnline(userId);
    // A replay on connect spends one of the user's sync tokens if one is left (it is never refused:
    // the upgrades themselves are bounded by the ticket limit and the per-user socket cap).
    const replaying = afterSeq !== null && Number.isSafeInteger(afterSeq);
    if (replaying) this.takeSyncToken(userId);
    this.accept(server, { userId, sessionId, lastSeenAt: Date.now(), replayedTo: 0, gone: false });

    this.send(server, { type: "ready", lastSeq: this.log.lastSeq(), online: this.onlineUsers() });
    if (replaying) this.replay(server, afterSeq);
    if (!wasOnline) this.broadcast({ type: "presence", userId, online: true }, { exceptUser: userId });
    await this.ensureAlarmBy(Date.now() + limits.chatHeartbeatCheckSec * 1000);
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    const attachment = this.touch(ws);
    if (!attachment) return;

    const userId = attachment.userId;
    const parsed = parseClientFrame(data);
    // A new message's checks (rate limit, file) start now, not when its turn comes: one user's
    // frames are still stored in the order they arrived, but the checks' round trips overlap.
    const checks = parsed.ok && parsed.frame.type === "send" ? this.startSendChecks(userId, parsed.frame) : null;
    const run = (this.frameChains.get(userId) ?? Promise.resolve()).then(() =>
      this.processFrame(ws, attachment, parsed, checks),
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
    attachment: Attachment,
    parsed: ParsedFrame,
    checks: SendChecks | null,
  ): Promise<void> {
    // The socket may have been dropped (removed member, timeout) while this frame waited its turn.
    if (this.attachment(ws)?.gone !== false) return;
    if (!parsed.ok) return this.sendError(ws, parsed.code, parsed.message, parsed.clientId);
    try {
      await this.handleFrame(ws, attachment.userId, parsed.frame, checks);
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
    userId: string,
    frame: ClientFrame,
    checks: SendChecks | null,
  ): Promise<void> {
    switch (frame.type) {
      case "ping":
        return this.send(ws, { type: "pong" });
      case "typing":
        if (this.typingAllowed(userId)) this.broadcast({ type: "typing", userId }, { exceptUser: userId });
        return;
      case "sync":
        if (!this.takeSyncToken(userId))
          return this.sendError(
            ws,
            "rate_limited",
            `Too many sync frames (at most ${limits.chatSyncBurst} per ${limits.chatSyncWindowSec} s); ` +
              "wait, then sync again or page over REST.",
          );
        return this.replay(ws, frame.afterSeq);
      case "read": {
        const r = this.moveRead(this.log.roomId(), userId, frame.seq, false);
        if (!r.ok) this.send(ws, refusalFrame(r));
        return;
      }
      case "send": {
        const { type: _type, ...input } = frame;
        return this.socketSend(ws, userId, input, checks);
      }
    }
  }

  /** A socket closed or failed: announce the user offline when it was their last one here. */
  protected socketClosed(_ws: WebSocket, attachment: Attachment): void {
    if (!this.isOnline(attachment.userId))
      this.broadcast({ type: "presence", userId: attachment.userId, online: false });
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
      const silent = this.silentSockets(limits.chatHeartbeatTimeoutSec * 1000, now);
      this.closeSockets(silent, CLOSE_HEARTBEAT, "heartbeat timeout");
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
    const open = this.openSockets().map((ws) => ({ ws, attachment: this.attachment(ws)! }));
    if (open.length === 0) return;
    const sessionIds = [...new Set(open.map((o) => o.attachment.sessionId).filter((id) => typeof id === "string"))];
    let live: { members: Set<string>; sessions: Set<string> };
    try {
      live = await liveMembersAndSessions(primaryDb(this.env.DB), this.log.roomId(), sessionIds);
    } catch (e) {
      console.error("chat: socket re-check failed:", (e as Error).message);
      return;
    }
    this.closeSockets(
      open.filter((o) => !live.sessions.has(o.attachment.sessionId)).map((o) => o.ws),
      CLOSE_SESSION_ENDED,
      "session ended",
    );
    for (const userId of this.onlineUsers()) {
      if (!live.members.has(userId)) await this.disconnectUser(this.log.roomId(), userId, "no longer a member");
    }
  }

  /** Closes `sockets` from our side; users left with no open socket here are announced offline. */
  private closeSockets(sockets: WebSocket[], code: number, reason: string): void {
    const wereOnline = new Set<string>();
    for (const ws of sockets) {
      const attachment = this.attachment(ws);
      if (!attachment || attachment.gone) continue;
      if (this.isOnline(attachment.userId)) wereOnline.add(attachment.userId);
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

  /** Spends one of the user's sync tokens (refilled at chatSyncBurst per chatSyncWindowSec); false when empty. */
  private takeSyncToken(userId: string): boolean {
    const now = this.now();
    const window = limits.chatSyncWindowSec * 1000;
    const budget = this.syncBudgets.get(userId) ?? { tokens: limits.chatSyncBurst, at: now };
    const refill = (Math.max(0, now - budget.at) * limits.chatSyncBurst) / window;
    const tokens = Math.min(limits.chatSyncBurst, budget.tokens + refill);
    const allowed = tokens >= 1;
    this.syncBudgets.set(userId, { tokens: allowed ? tokens - 1 : tokens, at: now });
    if (this.syncBudgets.size > 64) {
      // A bucket untouched for a window is full again: forgetting it changes nothing.
      for (const [id, b] of this.syncBudgets) if (now - b.at >= window) this.syncBudgets.delete(id);
    }
    return allowed;
  }

  private async socketSend(ws: WebSocket, userId: string, input: SendInput, checks: SendChecks | null): Promise<void> {
    const r = await this.admit(this.log.roomId(), userId, input, false, checks);
    if (!r.ok) return this.send(ws, refusalFrame(r, input.clientId));
    // A resend gets the original back on its own socket; a new message reached it via broadcast.
    if (!r.value.created) this.send(ws, { type: "message", message: r.value.message });
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
    this.log.bind(roomId);
    // The message this sender already stored with this clientId, as the answer to a resend.
    const resent = () => {
      const known = this.log.byClientId(senderId, input.clientId);
      return known ? ({ ok: true, value: { message: known, created: false, flush: 0 } } as const) : null;
    };
    // Started checks mean the clientId was new when the frame arrived (`startSendChecks` looked).
    if (!checks) {
      const known = resent();
      if (known) return known;
    }
    const checked = await (checks ?? this.sendChecks(senderId, input));
    // A send with this clientId that landed meanwhile is the answer to a retry, refused or not.
    if (!checked.ok) return resent() ?? checked;
    // store() keeps the first message per clientId: a concurrent send with it may have landed meanwhile.
    const stored = this.log.store(senderId, input);
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
    if (this.log.hasClientId(senderId, input.clientId)) return null;
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
    this.log.bind(roomId);
    if (seq > this.log.lastSeq())
      return { ok: false, code: "validation_failed", detail: "seq is beyond the room's last message." };
    if (seq <= this.log.readOf(userId)) return { ok: true, value: null };
    this.log.moveRead(userId, seq);
    this.broadcast({ type: "read", userId, seq });
    return { ok: true, value: this.requestFlush(waiting) };
  }

  /**
   * Sends the messages after `afterSeq`, in order, at most `chatReplayPage` of them; when more
   * remain, ends with `{ type: "more", afterSeq }` and the client pages on with another `sync`.
   * Synchronous, so nothing interleaves. (The runtime exposes no `bufferedAmount` on server-side
   * sockets, so the page cap and the sync budget are what bound the bytes one frame can queue.)
   */
  private replay(ws: WebSocket, afterSeq: number): void {
    const page = limits.chatReplayPage;
    const found = this.log.messages("SELECT * FROM messages WHERE seq > ? ORDER BY seq LIMIT ?", afterSeq, page + 1);
    const sent = found.slice(0, page);
    for (const message of sent) this.send(ws, { type: "message", message });
    const last = sent.at(-1)?.seq;
    if (last !== undefined && found.length > page) this.send(ws, { type: "more", afterSeq: last });
    // What this socket now has of the log: what was sent, or (nothing to send) what the client said
    // it has, but never beyond the log, or live messages after it would be skipped.
    const upTo = last ?? Math.min(afterSeq, this.log.lastSeq());
    const attachment = this.attachment(ws);
    if (attachment && upTo > attachment.replayedTo) this.attach(ws, { ...attachment, replayedTo: upTo });
  }

  /** To every socket (serialized once), but `exceptUser`'s and those a replay already gave seq `skipReplayed`. */
  private broadcast(frame: ServerFrame, opts: { exceptUser?: string; skipReplayed?: number } = {}): void {
    this.sendToAll(
      frame,
      (a) =>
        (opts.exceptUser === undefined || a.userId !== opts.exceptUser) &&
        (opts.skipReplayed === undefined || a.replayedTo < opts.skipReplayed),
    );
  }

  private sendError(ws: WebSocket, code: ErrorFrameCode, message: string, clientId?: string): void {
    this.send(ws, { type: "error", code, message, ...(clientId !== undefined ? { clientId } : {}) });
  }

  /** Users with at least one open socket here (CLOSING sockets and ones we dropped do not count). */
  protected onlineUsers(): string[] {
    return [...new Set(this.openSockets().map((ws) => this.attachment(ws)!.userId))];
  }

  private isOnline(userId: string): boolean {
    return this.ctx.getWebSockets(userId).some((ws) => this.isOpen(ws));
  }
}

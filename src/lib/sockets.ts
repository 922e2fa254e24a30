/**
 * The sockets of a Durable Object that holds signed-in sessions' WebSockets (hibernation API): roster and
 * attachment cache, session tags and ending, heartbeat, send-to-all. See docs/architecture.md#sockets.
 */
import { DurableObject } from "cloudflare:workers";
import { limits } from "../config";

/** WebSocket.READY_STATE_OPEN. */
const OPEN = 1;
/** Close code: the socket's session ended (logout, revocation, password change or reset, account deletion). */
export const CLOSE_SESSION_ENDED = 4401;
/** Close code: no longer a member of what the socket follows (a chat room, a team). */
export const CLOSE_REMOVED = 4403;
/** Close code: no frame and no ping for longer than the heartbeat timeout. */
export const CLOSE_HEARTBEAT = 4408;
/**
 * Close code: the user opened more sockets on this object than `limits.socketsPerUserPerObject`;
 * this was the quietest.
 */
export const CLOSE_TOO_MANY_SOCKETS = 4429;

/** The exact ping the runtime answers without waking the object; any other spelling of a ping is answered awake. */
const PING_TEXT = JSON.stringify({ type: "ping" });
export const PONG_TEXT = JSON.stringify({ type: "pong" });

/** The tag a socket opened with `sessionId` carries (tags are fixed at accept; the user id is the other one). */
const sessionTag = (sessionId: string) => `session:${sessionId}`;

/** How often a frame moves a socket's `lastSeenAt` (see `touch`). */
const TOUCH_EVERY_MS = 1000;

/** What every socket's attachment holds; each object adds its own fields. */
export interface SocketAttachment {
  userId: string;
  /** The session whose access token opened the socket: the socket ends with it. */
  sessionId: string;
  /** Last frame received (ms); pings answered by the runtime are read from the auto-response timestamp. */
  lastSeenAt: number;
  /** Set once the socket closed or the object closed it. */
  gone: boolean;
}

/**
 * Ended sessions, counted by user id (all their sessions) or session tag, in memory: an upgrade that was
 * checking its session while it ended refuses (docs/architecture.md#ending-a-session).
 */
export class SessionEnds {
  private readonly counts = new Map<string, number>();

  /** Records that `sessions` (or all of the user's) ended; returns the tags their sockets carry. */
  end(userId: string, sessions: string[] | "all"): string[] {
    const tags = sessions === "all" ? [userId] : sessions.map(sessionTag);
    for (const t of tags) this.counts.set(t, this.count(t) + 1);
    return tags;
  }

  /** Call before checking a session; the function returned tells whether it ended since. */
  watch(userId: string, sessionId: string): () => boolean {
    const tag = sessionTag(sessionId);
    const [byUser, bySession] = [this.count(userId), this.count(tag)];
    return () => this.count(userId) !== byUser || this.count(tag) !== bySession;
  }

  private count(tag: string): number {
    return this.counts.get(tag) ?? 0;
  }
}

/** A socket and its attachment as last written or read. */
interface Held<A> {
  readonly ws: WebSocket;
  attachment: A;
}

/**
 * A Durable Object holding sessions' sockets. `A` is its attachment, `F` the frames it sends. Subclasses keep
 * their own protocol; this keeps the roster, so that it survives hibernation.
 */
export abstract class SocketObject<A extends SocketAttachment, F> extends DurableObject<Env> {
  /**
   * Attachments as last written or read: reading the stored one is a structured-clone decode per socket per
   * send. Written through in `attach`, so it never disagrees with the stored one; refilled after hibernation.
   */
  private held = new WeakMap<WebSocket, Held<A>>();
  /** `getWebSockets()`, kept until a socket is accepted, closed or dropped. */
  private socketList: WebSocket[] | null = null;
  /**
   * The same sockets with their attachments, for `sendToAll`: one array walk per frame, no map lookup
   * per socket. Its entries are `held`'s, which `attach` updates in place, so it is never stale.
   */
  private roster: Held<A>[] | null = null;
  protected readonly sessionEnds = new SessionEnds();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_TEXT, PONG_TEXT));
  }

  /**
   * A socket closed or failed without the object closing it, or the module closed it to keep its user
   * under the cap (its attachment is marked gone already).
   */
  protected abstract socketClosed(ws: WebSocket, attachment: A): void;

  /**
   * Accepts a socket, tagged with its user id and session, with its first attachment. A user past
   * `limits.socketsPerUserPerObject` open sockets here loses the one heard from least recently (4429).
   */
  protected accept(ws: WebSocket, attachment: A): void {
    this.ctx.acceptWebSocket(ws, [attachment.userId, sessionTag(attachment.sessionId)]);
    this.forgetSockets();
    this.attach(ws, attachment);
    this.capUserSockets(attachment.userId, ws);
  }

  /** Closes `userId`'s quietest open sockets here (never `newest`) until they hold at most the cap. */
  private capUserSockets(userId: string, newest: WebSocket): void {
    const others = this.ctx
      .getWebSockets(userId)
      .filter((ws) => ws !== newest && this.isOpen(ws) && this.attachment(ws)!.userId === userId);
    const excess = others.length + 1 - limits.socketsPerUserPerObject;
    if (excess <= 0) return;
    const heard = (ws: WebSocket) =>
      Math.max(this.attachment(ws)!.lastSeenAt, this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0);
    for (const ws of others.sort((a, b) => heard(a) - heard(b)).slice(0, excess)) {
      this.drop(ws, CLOSE_TOO_MANY_SOCKETS, "too many sockets for this user here; the quietest was closed");
      this.socketClosed(ws, this.attachment(ws)!);
    }
  }

  protected attachment(ws: WebSocket): A | null {
    const held = this.held.get(ws);
    if (held) return held.attachment;
    const stored = (ws.deserializeAttachment() as A | null) ?? null;
    if (stored) this.held.set(ws, { ws, attachment: stored });
    return stored;
  }

  protected attach(ws: WebSocket, attachment: A): void {
    ws.serializeAttachment(attachment);
    const held = this.held.get(ws);
    if (held) held.attachment = attachment;
    else this.held.set(ws, { ws, attachment });
  }

  /**
   * A frame arrived: the socket is alive. Null when the socket is gone (nothing to handle).
   * `lastSeenAt` moves at most once a second (a busy sender's every frame would otherwise write its
   * attachment again; the heartbeat timeouts are 90 s).
   */
  protected touch(ws: WebSocket): A | null {
    const attachment = this.attachment(ws);
    if (!attachment || attachment.gone) return null;
    const now = Date.now();
    if (now - attachment.lastSeenAt < TOUCH_EVERY_MS) return attachment;
    const seen = { ...attachment, lastSeenAt: now };
    this.attach(ws, seen);
    return seen;
  }

  protected sockets(): WebSocket[] {
    this.socketList ??= this.ctx.getWebSockets();
    return this.socketList;
  }

  /** The socket list changed (a socket accepted, closed or dropped): read it again when next needed. */
  private forgetSockets(): void {
    this.socketList = null;
    this.roster = null;
  }

  /** Open and not closed by the object (a CLOSING socket, or one the object dropped, is not). */
  protected isOpen(ws: WebSocket): boolean {
    return ws.readyState === OPEN && this.attachment(ws)?.gone === false;
  }

  protected openSockets(): WebSocket[] {
    return this.sockets().filter((ws) => this.isOpen(ws));
  }

  protected send(ws: WebSocket, frame: F): void {
    this.trySend(ws, JSON.stringify(frame));
  }

  /** Serialized once, sent to every socket not gone for which `include` (if given) holds. */
  protected sendToAll(frame: F, include?: (attachment: A) => boolean): void {
    const text = JSON.stringify(frame);
    this.roster ??= this.sockets().flatMap((ws) => (this.attachment(ws) ? [this.held.get(ws)!] : []));
    for (const { ws, attachment } of this.roster) {
      if (attachment.gone || (include && !include(attachment))) continue;
      this.trySend(ws, text);
    }
  }

  /** A socket that closed and whose close event has not run yet refuses the send; its close event cleans up. */
  protected trySend(ws: WebSocket, text: string): void {
    try {
      ws.send(text);
    } catch {
      // closed meanwhile
    }
  }

  /** Closes a socket from the object's side and marks it gone, so its close event is not handled again. */
  protected drop(ws: WebSocket, code: number, reason: string): void {
    this.forgetSockets();
    const attachment = this.attachment(ws);
    if (attachment) this.attach(ws, { ...attachment, gone: true });
    try {
      ws.close(code, reason);
    } catch {
      // already closed
    }
  }

  /**
   * The sockets `userId` opened with `sessions` (or with any session), found by tag (so hibernated ones too),
   * after recording the end for upgrades in flight. The caller closes them with CLOSE_SESSION_ENDED.
   */
  protected endedSessionSockets(userId: string, sessions: string[] | "all"): WebSocket[] {
    return this.sessionEnds
      .end(userId, sessions)
      .flatMap((tag) => this.ctx.getWebSockets(tag))
      .filter((ws) => this.attachment(ws)?.userId === userId);
  }

  /** Open sockets silent (no frame, no auto-answered ping) for longer than `timeoutMs`: dead phones send no close. */
  protected silentSockets(timeoutMs: number, now = Date.now()): WebSocket[] {
    return this.openSockets().filter((ws) => {
      const autoPing = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0;
      return now - Math.max(this.attachment(ws)!.lastSeenAt, autoPing) > timeoutMs;
    });
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    // Complete the closing handshake; 1005/1006 are not codes one may send.
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, "closed");
    } catch {
      // already closed
    }
    this.left(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.left(ws);
  }

  private left(ws: WebSocket): void {
    this.forgetSockets();
    const attachment = this.attachment(ws);
    if (!attachment || attachment.gone) return;
    const gone = { ...attachment, gone: true };
    this.attach(ws, gone);
    this.socketClosed(ws, gone);
  }
}

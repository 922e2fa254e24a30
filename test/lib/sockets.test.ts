import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { limits } from "../../src/config";
import {
  CLOSE_HEARTBEAT,
  CLOSE_SESSION_ENDED,
  CLOSE_TOO_MANY_SOCKETS,
  SessionEnds,
  type SocketAttachment,
  SocketObject,
} from "../../src/lib/sockets";
import { type LiveSocket, subscribe } from "../features/collections/live-helpers";
import { signup } from "../helpers/api";

type Frame = { type: string };

/** The module's protected parts, opened for the test; records the close events it hands on. */
class Sockets extends SocketObject<SocketAttachment, Frame> {
  closedEvents: string[] = [];
  protected socketClosed(_ws: WebSocket, attachment: SocketAttachment): void {
    this.closedEvents.push(attachment.userId);
  }
  /** Accepts the server end of a new pair; returns both ends (the client end receives what is sent). */
  open(userId: string, sessionId: string, lastSeenAt = Date.now()): { server: WebSocket; client: WebSocket } {
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.accept(server, { userId, sessionId, lastSeenAt, gone: false });
    return { server, client };
  }
  end = (userId: string, sessions: string[] | "all") => this.endedSessionSockets(userId, sessions);
  silent = (timeoutMs: number) => this.silentSockets(timeoutMs);
  toAll = (frame: Frame, include?: (a: SocketAttachment) => boolean) => this.sendToAll(frame, include);
  dropSocket = (ws: WebSocket, code: number) => this.drop(ws, code, "test");
  watch = (userId: string, sessionId: string) => this.sessionEnds.watch(userId, sessionId);
}

let objects = 0;
/** Runs `fn` with a real Durable Object state to hold the sockets: a fresh, otherwise unused chat room's. */
const withState = <T>(fn: (state: DurableObjectState) => T | Promise<T>) =>
  runInDurableObject(env.CHAT_ROOM.get(env.CHAT_ROOM.idFromName(`socket-module-${++objects}`)), (_o, state) =>
    fn(state),
  );

/** Collects the text frames a client end receives. */
function received(client: WebSocket): string[] {
  const frames: string[] = [];
  client.accept();
  client.addEventListener("message", (e) => frames.push(String(e.data)));
  return frames;
}

describe("socket module", () => {
  // Its own session or all the user's sessions, no other.
  it("an upgrade sees a session end that landed while it checked", () => {
    const ends = new SessionEnds();
    const mine = ends.watch("u1", "s1");
    const otherSession = ends.watch("u1", "s2");
    const otherUser = ends.watch("u2", "s3");
    expect(mine()).toBe(false);
    ends.end("u1", ["s1"]);
    expect([mine(), otherSession(), otherUser()]).toEqual([true, false, false]);
    const later = ends.watch("u1", "s2");
    ends.end("u1", "all");
    expect([otherSession(), later(), otherUser()]).toEqual([true, true, false]);
  });

  it("ending sessions finds their sockets by tag, only the user's, and blocks their upgrades in flight", async () => {
    await withState((state) => {
      const sockets = new Sockets(state, env);
      const a1 = sockets.open("alice", "s1").server;
      const a2 = sockets.open("alice", "s2").server;
      sockets.open("bob", "s3");
      const inFlight = sockets.watch("alice", "s1");
      expect(sockets.end("alice", ["s1"])).toEqual([a1]);
      expect(inFlight()).toBe(true);
      expect(sockets.end("alice", "all")).toEqual([a1, a2]);
      // Bob's session id does not reach his sockets through alice.
      expect(sockets.end("alice", ["s3"])).toEqual([]);
    });
  });

  it("the heartbeat finds a socket silent past the timeout; once dropped, not again", async () => {
    await withState((state) => {
      const sockets = new Sockets(state, env);
      const quiet = sockets.open("u1", "s1", Date.now() - 60_000).server;
      sockets.open("u2", "s2");
      expect(sockets.silent(30_000)).toEqual([quiet]);
      sockets.dropSocket(quiet, CLOSE_HEARTBEAT);
      expect(sockets.silent(30_000)).toEqual([]);
    });
  });

  it("send-to-all reaches every socket the filter lets through; a dropped one gets nothing", async () => {
    const frames = await withState(async (state) => {
      const sockets = new Sockets(state, env);
      const [a, b, c] = [sockets.open("a", "s1"), sockets.open("b", "s2"), sockets.open("c", "s3")];
      const got = [received(a.client), received(b.client), received(c.client)];
      sockets.dropSocket(c.server, CLOSE_SESSION_ENDED);
      sockets.toAll({ type: "hello" }, (attachment) => attachment.userId !== "b");
      sockets.toAll({ type: "again" });
      await new Promise((resolve) => a.client.addEventListener("message", () => got[0]!.length === 2 && resolve(0)));
      return got;
    });
    expect(frames).toEqual([['{"type":"hello"}', '{"type":"again"}'], ['{"type":"again"}'], []]);
  });

  it("a close event is handed on once, never for a socket the object dropped (even after hibernation)", async () => {
    await withState(async (state) => {
      const first = new Sockets(state, env);
      const dropped = first.open("a", "s1").server;
      const closing = first.open("b", "s2").server;
      first.dropSocket(dropped, CLOSE_SESSION_ENDED);
      // Woken from hibernation: a new instance reads the attachments back from the sockets.
      const woken = new Sockets(state, env);
      await woken.webSocketClose(dropped, 1005);
      await woken.webSocketClose(closing, 1000);
      await woken.webSocketError(closing);
      expect(woken.closedEvents).toEqual(["b"]);
    });
  });

  // The closed socket is handed to socketClosed once; other users keep theirs.
  it("a user past the per-object cap loses their quietest socket (4429)", async () => {
    const cap = limits.socketsPerUserPerObject;
    const { closes, events, openCount, bobOpen } = await withState(async (state) => {
      const sockets = new Sockets(state, env);
      const now = Date.now();
      // Alice's sockets were heard from at different times; the third is the quietest.
      const alice = Array.from({ length: cap }, (_, i) => sockets.open("alice", `s${i}`, now - (i === 2 ? 50_000 : i)));
      const bob = Array.from({ length: cap }, (_, i) => sockets.open("bob", `b${i}`));
      const closed = alice.map((s) => {
        s.client.accept();
        return new Promise<number>((resolve) => s.client.addEventListener("close", (e) => resolve(e.code)));
      });
      sockets.open("alice", "new");
      const first = await Promise.race([...closed.map((p, i) => p.then((code) => ({ i, code })))]);
      const isOpen = (ws: WebSocket) => ws.readyState === 1;
      return {
        closes: [first],
        events: sockets.closedEvents,
        openCount: state.getWebSockets("alice").filter(isOpen).length,
        bobOpen: bob.filter((s) => isOpen(s.server)).length,
      };
    });
    expect(closes).toEqual([{ i: 2, code: CLOSE_TOO_MANY_SOCKETS }]);
    expect(events).toEqual(["alice"]);
    expect(openCount).toBe(cap);
    expect(bobOpen).toBe(cap);
  });
});

describe("socket module: the per-user cap on a live-data hub", () => {
  it(`subscription ${limits.socketsPerUserPerObject + 1} of one user on a hub closes the quietest`, async () => {
    const user = await signup();
    const sockets: LiveSocket[] = [];
    try {
      for (let i = 0; i < limits.socketsPerUserPerObject; i++) sockets.push((await subscribe(user, "notes")).socket);
      const newest = (await subscribe(user, "notes")).socket;
      sockets.push(newest);
      expect((await sockets[0]!.closedWithin()).code).toBe(CLOSE_TOO_MANY_SOCKETS);
    } finally {
      for (const s of sockets) s.close();
    }
  });
});

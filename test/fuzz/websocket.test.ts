/**
 * WebSocket fuzzing of GET /v1/rooms/:id/ws.
 * - The upgrade: junk tokens (header or ?token=), junk room ids and ?afterSeq= never give a 5xx,
 *   and every refusal is problem+json.
 * - Frames: a member sends arbitrary strings, JSON values, near-miss frames and binary data. Each
 *   bad frame is answered with an `error` frame (never `internal`), the socket stays open, and D1
 *   is untouched. Each bad frame is followed by a ping written differently from the auto-answered
 *   one, so its pong comes from the room itself, in order, after the answer to the bad frame.
 *
 * - Valid traffic: random sends, typing, syncs (replays, `more`, the sync budget) and message
 *   deletions over REST (`deleted`, tombstones). Every server frame matches the protocol's schema and
 *   no error is `internal`.
 *
 * - Collection subscriptions: junk upgrades (collections, tokens, cursors), junk frames (each gets a
 *   `bad_frame` error, the socket stays open, D1 untouched), and random writes (REST, client ids,
 *   batches) after which the socket's view equals a full sync, frames match the protocol and cursors increase.
 *
 * Reproduce a failure: VITE_FUZZ_SEED=<seed printed by fast-check> npx vitest run test/fuzz
 */
import { exports } from "cloudflare:workers";
import fc from "fast-check";
import * as v from "valibot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { limits } from "../../src/config";
import { ClientFrameSchema, ServerFrameSchema } from "../../src/features/chat/protocol";
import { LiveClientFrame, LiveServerFrame } from "../../src/features/collections/live";
import { api, freshIp, signup, type TestUser } from "../helpers/api";
import { closeSocket, track } from "../helpers/sockets";
import { changed, fcParams, headerJunk, snapshot, stringJunk, valueJunk } from "./support";

/** The room's own ping, spelled so that the runtime's auto-response does not match it. */
const ROOM_PING = '{ "type" : "ping" }';

class Client {
  frames: { type?: string; code?: unknown; message?: unknown }[] = [];
  closed: { code: number; reason: string } | null = null;
  private wake: (() => void) | null = null;

  /** `shared`: opened in beforeAll for the whole file (closed in afterAll), else closed when its test ends. */
  constructor(
    readonly ws: WebSocket,
    opts: { shared?: boolean } = {},
  ) {
    if (!opts.shared) track(ws);
    ws.accept();
    ws.addEventListener("message", (e) => {
      let f: any;
      try {
        f = JSON.parse(typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data as ArrayBuffer));
      } catch {
        f = { type: "<unparsable server frame>", raw: String(e.data).slice(0, 200) };
      }
      this.frames.push(f);
      this.wake?.();
    });
    ws.addEventListener("close", (e) => {
      this.closed = { code: e.code, reason: e.reason };
      this.wake?.();
    });
  }

  /**
   * Waits until a frame after index `from` matches, or the socket closes (checked at each frame or
   * close event), or `ms` pass without one: the timeout only bounds the wait for an event.
   */
  async until(from: number, pred: (f: Client["frames"][number]) => boolean, ms = 5000): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (this.frames.slice(from).some(pred)) return true;
      if (this.closed) return false;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
    }
  }
}

async function upgrade(path: string, headers: Record<string, string> = {}) {
  return exports.default.fetch(
    new Request(`https://outpost.test${path}`, {
      headers: { upgrade: "websocket", "cf-connecting-ip": freshIp(), ...headers },
    }),
  );
}

let alice: TestUser;
let bob: TestUser;
let roomId: string;
let client: Client;

beforeAll(async () => {
  alice = await signup();
  bob = await signup();
  const room = await api("/v1/rooms", {
    token: alice.accessToken,
    body: { kind: "group", name: "fuzz", memberIds: [bob.id] },
  });
  expect(room.status).toBe(201);
  roomId = room.body.id;
  const res = await upgrade(`/v1/rooms/${roomId}/ws`, { authorization: `Bearer ${alice.accessToken}` });
  expect(res.status).toBe(101);
  client = new Client(res.webSocket!, { shared: true });
  expect(await client.until(0, (f) => f.type === "ready")).toBe(true);
});

afterAll(async () => {
  if (client) await closeSocket(client.ws);
});

/** Whether the server's protocol accepts a frame (such frames are not "bad" and get no error). */
function isValidFrame(data: string | Uint8Array): boolean {
  if (typeof data !== "string" || data.length > limits.chatFrameMaxBytes) return false;
  try {
    return v.safeParse(ClientFrameSchema, JSON.parse(data)).success;
  } catch {
    return false;
  }
}

const frameFields = ["clientId", "text", "fileId", "seq", "afterSeq", "type"];
const badFrame: fc.Arbitrary<string | Uint8Array> = fc
  .oneof(
    stringJunk,
    fc.string({ maxLength: 200 }),
    fc.jsonValue({ maxDepth: 4 }).map((j) => JSON.stringify(j)),
    fc.object({ maxDepth: 2 }).map((o) => JSON.stringify(o)),
    // Near misses: a real frame type with junk or missing fields.
    fc
      .tuple(
        fc.constantFrom(
          "send",
          "typing",
          "read",
          "sync",
          "ping",
          "message",
          "ready",
          "error",
          "more",
          "deleted",
          "SEND",
          "",
          "__proto__",
        ),
        fc.record(Object.fromEntries(frameFields.filter((f) => f !== "type").map((k) => [k, valueJunk])), {
          requiredKeys: [],
        }),
        fc.option(fc.dictionary(fc.string({ maxLength: 8 }), valueJunk, { maxKeys: 2 }), { nil: undefined }),
      )
      .map(([type, fields, extra]) => JSON.stringify({ type, ...fields, ...(extra ?? {}) })),
    fc.constantFrom(
      '{"type":"more","afterSeq":1}',
      '{"type":"deleted","seq":1}',
      '{"type":"sync","afterSeq":-1}',
      '{"type":"sync"}',
      '{"type":"send","clientId":"a"}',
      '{"type":"send","clientId":"has space","text":"x"}',
      '{"type":"read","seq":-1}',
      '{"type":"read","seq":1.5}',
      '{"type":"sync","afterSeq":"1"}',
      '{"type":"send","clientId":"x","text":"   "}',
      `{"type":"send","clientId":"${"c".repeat(200)}","text":"x"}`,
      `{"type":"send","clientId":"big","text":"${"x".repeat(limits.chatFrameMaxBytes)}"}`,
      '{"type":"ping","extra":1}',
      "{",
      "[]",
      "null",
      "",
      " ",
    ),
    fc.uint8Array({ minLength: 0, maxLength: 512 }),
  )
  .filter((f) => !isValidFrame(f));

describe("WebSocket fuzz", () => {
  it("upgrade requests with junk tokens, room ids and afterSeq: no 5xx, refusals are problem+json", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          room: fc.oneof(
            fc.constant("real"),
            stringJunk.filter((s) => s.length > 0 && !/[/?#]/.test(s)),
          ),
          token: fc.oneof(fc.constant("alice"), fc.constant("none"), headerJunk),
          via: fc.constantFrom("header", "query"),
          afterSeq: fc.option(fc.oneof(stringJunk, fc.constantFrom("-1", "0", "1.5", "99999999999999999999", "1e3")), {
            nil: undefined,
          }),
        }),
        async (c) => {
          const id = c.room === "real" ? roomId : encodeURIComponent(c.room.replace(/[\uD800-\uDFFF]/g, "?"));
          const token = c.token === "alice" ? alice.accessToken : c.token === "none" ? null : c.token;
          const q = new URLSearchParams();
          if (token !== null && c.via === "query") q.set("token", token);
          if (c.afterSeq !== undefined) q.set("afterSeq", c.afterSeq);
          const headers: Record<string, string> =
            token !== null && c.via === "header" ? { authorization: `Bearer ${token}` } : {};
          const qs = q.toString();
          const res = await upgrade(`/v1/rooms/${id}/ws${qs ? `?${qs}` : ""}`, headers);
          if (res.status === 101) {
            new Client(res.webSocket!).ws.close(1000, "fuzz");
            return;
          }
          const text = await res.text();
          const ct = res.headers.get("content-type") ?? "";
          const what = `upgrade ${JSON.stringify(c)} → ${res.status} ${ct} ${text.slice(0, 300)}`;
          if (res.status >= 500) throw new Error(`5xx: ${what}`);
          if (
            res.status >= 400 &&
            (!ct.startsWith("application/problem+json") || typeof JSON.parse(text).code !== "string")
          )
            throw new Error(`4xx without problem+json: ${what}`);
        },
      ),
      fcParams(),
    );
  });

  it("bad frames get an error frame (never `internal`), the socket stays open, D1 is untouched", async () => {
    let frames = 0;
    await fc.assert(
      fc.asyncProperty(badFrame, async (frame) => {
        const before = await snapshot();
        const from = client.frames.length;
        client.ws.send(frame);
        client.ws.send(ROOM_PING);
        frames++;
        const show =
          typeof frame === "string" ? JSON.stringify(frame.slice(0, 300)) : `${frame.byteLength} binary bytes`;
        const ponged = await client.until(from, (f) => f.type === "pong");
        if (!ponged)
          throw new Error(
            `no pong after the bad frame ${show}; ` +
              `socket ${client.closed ? `closed ${JSON.stringify(client.closed)}` : "silent"}`,
          );
        const answer = client.frames.slice(from);
        const errors = answer.filter((f) => f.type === "error");
        if (errors.length === 0) throw new Error(`no error frame for ${show}; got ${JSON.stringify(answer)}`);
        if (errors.some((e) => typeof e.code !== "string" || e.code === "internal" || typeof e.message !== "string"))
          throw new Error(`bad error frame for ${show}: ${JSON.stringify(errors)}`);
        if (client.closed) throw new Error(`socket closed after ${show}: ${JSON.stringify(client.closed)}`);
        const diff = changed(before, await snapshot());
        if (diff.length) throw new Error(`bad frame ${show} wrote to ${diff.join(", ")}`);
      }),
      fcParams(),
    );
    expect(frames).toBeGreaterThan(0);
    // Still a working connection: a real message goes through and comes back.
    const from = client.frames.length;
    client.ws.send(JSON.stringify({ type: "send", clientId: "fuzz-final", text: "still here" }));
    expect(await client.until(from, (f) => f.type === "message")).toBe(true);
  });

  it("valid frames and deletions: every server frame matches the protocol, no error is `internal`", async () => {
    let n = 0;
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("send" as const),
        text: fc.string({ minLength: 1, maxLength: 40 }).filter((t) => t.trim().length > 0),
      }),
      fc.record({ kind: fc.constant("typing" as const) }),
      fc.record({ kind: fc.constant("sync" as const), afterSeq: fc.nat({ max: 60 }) }),
      fc.record({
        kind: fc.constant("delete" as const),
        seq: fc.nat({ max: 60 }),
        by: fc.constantFrom("alice", "bob"),
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 8 }), async (ops) => {
        const from = client.frames.length;
        for (const o of ops) {
          if (o.kind === "send")
            client.ws.send(JSON.stringify({ type: "send", clientId: `fuzz-valid-${++n}`, text: o.text }));
          else if (o.kind === "typing") client.ws.send(JSON.stringify({ type: "typing" }));
          else if (o.kind === "sync") client.ws.send(JSON.stringify({ type: "sync", afterSeq: o.afterSeq }));
          else {
            const res = await api(`/v1/rooms/${roomId}/messages/${o.seq}`, {
              method: "DELETE",
              token: (o.by === "alice" ? alice : bob).accessToken,
            });
            // Alice owns the room: she may delete any message; Bob sends none, so he may delete none.
            const expected = o.by === "alice" ? [204, 404] : [403, 404];
            if (!expected.includes(res.status))
              throw new Error(`DELETE seq ${o.seq} by ${o.by} → ${res.status} ${res.text}`);
          }
        }
        client.ws.send(ROOM_PING);
        if (!(await client.until(from, (f) => f.type === "pong")))
          throw new Error(`no pong after ${JSON.stringify(ops)}; socket ${client.closed ? "closed" : "silent"}`);
        for (const f of client.frames.slice(from)) {
          if (!v.safeParse(ServerFrameSchema, f).success)
            throw new Error(
              `frame outside the protocol after ${JSON.stringify(ops)}: ${JSON.stringify(f).slice(0, 300)}`,
            );
          if (f.type === "error" && f.code === "internal")
            throw new Error(`internal error after ${JSON.stringify(ops)}: ${JSON.stringify(f)}`);
        }
      }),
      fcParams(),
    );
  });
});

// --- collection subscriptions (GET /v1/collections/:name/subscribe) ----------------------------

/** Whether the hub takes a frame as a ping (anything else gets a `bad_frame` error). */
function isLivePing(data: string | Uint8Array): boolean {
  if (typeof data !== "string" || data.length > limits.liveFrameMaxBytes) return false;
  try {
    return v.safeParse(LiveClientFrame, JSON.parse(data)).success;
  } catch {
    return false;
  }
}

const liveBadFrame: fc.Arbitrary<string | Uint8Array> = fc
  .oneof(
    stringJunk,
    fc.jsonValue({ maxDepth: 4 }).map((j) => JSON.stringify(j)),
    fc.object({ maxDepth: 2 }).map((o) => JSON.stringify(o)),
    fc
      .tuple(
        fc.constantFrom("ping", "PING", "pong", "change", "ready", "error", "subscribe", "send", "", "__proto__"),
        fc.option(fc.dictionary(fc.string({ maxLength: 8 }), valueJunk, { minKeys: 1, maxKeys: 2 }), {
          nil: undefined,
        }),
      )
      .map(([type, extra]) => JSON.stringify({ type, ...(extra ?? {}) })),
    fc.constantFrom(
      '{"type":"ping","since":1}',
      `{"type":"ping","pad":"${"x".repeat(limits.liveFrameMaxBytes)}"}`,
      "{",
      "[]",
      "null",
      "",
      " ",
    ),
    fc.uint8Array({ minLength: 0, maxLength: 512 }),
  )
  .filter((f) => !isLivePing(f));

describe("WebSocket fuzz: collection subscriptions", () => {
  let sub: Client;
  const SUB_PING = '{ "type" : "ping" }';

  beforeAll(async () => {
    const res = await upgrade("/v1/collections/notes/subscribe", { authorization: `Bearer ${alice.accessToken}` });
    expect(res.status).toBe(101);
    sub = new Client(res.webSocket!, { shared: true });
    expect(await sub.until(0, (f) => f.type === "ready")).toBe(true);
  });

  afterAll(() => {
    sub?.ws.close(1000, "done");
  });

  it("upgrades with junk collections, tokens and cursors: no 5xx, refusals are problem+json", async () => {
    const realCursor = btoa(JSON.stringify({ q: 1 })).replace(/=+$/, "");
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          name: fc.oneof(
            fc.constantFrom("notes", "posts"),
            stringJunk.filter((s) => s.length > 0 && !/[/?#]/.test(s)),
          ),
          token: fc.oneof(fc.constant("alice"), fc.constant("none"), headerJunk),
          via: fc.constantFrom("header", "query"),
          since: fc.option(
            fc.oneof(
              stringJunk,
              fc.constantFrom(
                realCursor,
                btoa('{"q":-1}'),
                btoa('{"q":1e300}'),
                btoa('{"q":99999999999999}'),
                btoa('{"q":"1"}'),
                btoa("[]"),
                "%",
                "a".repeat(600),
              ),
            ),
            { nil: undefined },
          ),
        }),
        async (c) => {
          const name = encodeURIComponent(c.name.replace(/[\uD800-\uDFFF]/g, "?"));
          const token = c.token === "alice" ? alice.accessToken : c.token === "none" ? null : c.token;
          const q = new URLSearchParams();
          if (token !== null && c.via === "query") q.set("token", token);
          if (c.since !== undefined) q.set("since", c.since);
          const headers: Record<string, string> =
            token !== null && c.via === "header" ? { authorization: `Bearer ${token}` } : {};
          const qs = q.toString();
          const res = await upgrade(`/v1/collections/${name}/subscribe${qs ? `?${qs}` : ""}`, headers);
          if (res.status === 101) {
            const s = new Client(res.webSocket!);
            // Every 101 ends in `ready` (or, for a cursor past retention, the resync error): never `internal`.
            const settled = await s.until(0, (f) => f.type === "ready" || f.type === "error");
            s.ws.close(1000, "fuzz");
            if (!settled || s.frames.some((f) => f.type === "error" && f.code === "internal"))
              throw new Error(`subscription ${JSON.stringify(c)} → ${JSON.stringify(s.frames).slice(0, 300)}`);
            return;
          }
          const text = await res.text();
          const ct = res.headers.get("content-type") ?? "";
          const what = `upgrade ${JSON.stringify(c)} → ${res.status} ${ct} ${text.slice(0, 300)}`;
          if (res.status >= 500) throw new Error(`5xx: ${what}`);
          if (
            res.status >= 400 &&
            (!ct.startsWith("application/problem+json") || typeof JSON.parse(text).code !== "string")
          )
            throw new Error(`4xx without problem+json: ${what}`);
        },
      ),
      fcParams(),
    );
  });

  it("bad frames get a `bad_frame` error frame, the socket stays open, D1 is untouched", async () => {
    await fc.assert(
      fc.asyncProperty(liveBadFrame, async (frame) => {
        const before = await snapshot();
        const from = sub.frames.length;
        sub.ws.send(frame);
        sub.ws.send(SUB_PING);
        const show =
          typeof frame === "string" ? JSON.stringify(frame.slice(0, 200)) : `${frame.byteLength} binary bytes`;
        if (!(await sub.until(from, (f) => f.type === "pong")))
          throw new Error(
            `no pong after ${show}; socket ${sub.closed ? `closed ${JSON.stringify(sub.closed)}` : "silent"}`,
          );
        const errors = sub.frames.slice(from).filter((f) => f.type === "error");
        if (errors.length !== 1 || errors[0]!.code !== "bad_frame")
          throw new Error(`expected one bad_frame error for ${show}, got ${JSON.stringify(sub.frames.slice(from))}`);
        if (sub.closed) throw new Error(`socket closed after ${show}`);
        const diff = changed(before, await snapshot());
        if (diff.length) throw new Error(`bad frame ${show} wrote to ${diff.join(", ")}`);
      }),
      fcParams(),
    );
  });

  // REST and batch writes: every frame matches the protocol, cursors increase, and the socket's
  // view equals a full sync.
  it("random writes: frames match the protocol and the socket's view equals a full sync", async () => {
    const state = new Map<string, Record<string, unknown>>();
    let lastSeq = 0;
    const seqOf = (cursor: string) =>
      (JSON.parse(atob(cursor.replace(/-/g, "+").replace(/_/g, "/"))) as { q: number }).q;
    // The socket's view: every change frame since it opened, applied once each, in arrival order.
    // (The error frames before this test answered the bad frames above.)
    const start = sub.frames.length;
    let applied = 0;
    const applyNew = () => {
      for (; applied < sub.frames.length; applied++) {
        const f = sub.frames[applied]!;
        if (!v.safeParse(LiveServerFrame, f).success)
          throw new Error(`frame outside the protocol: ${JSON.stringify(f).slice(0, 300)}`);
        if (f.type === "error" && applied >= start) throw new Error(`error frame: ${JSON.stringify(f)}`);
        if (f.type !== "change") continue;
        const ch = f as unknown as { cursor: string; item: Record<string, unknown> & { id: string } };
        const seq = seqOf(ch.cursor);
        if (seq <= lastSeq) throw new Error(`cursor ${seq} after ${lastSeq}`);
        lastSeq = seq;
        if (ch.item.deleted) state.delete(ch.item.id);
        else state.set(ch.item.id, ch.item);
      }
    };
    applyNew();
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("create" as const),
        title: fc.string({ minLength: 1, maxLength: 30 }),
        withId: fc.boolean(),
      }),
      fc.record({ kind: fc.constant("update" as const), pick: fc.nat(), pinned: fc.boolean() }),
      fc.record({ kind: fc.constant("delete" as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant("batch" as const), n: fc.integer({ min: 1, max: 4 }), pick: fc.nat() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 6 }), async (ops) => {
        for (const o of ops) {
          applyNew();
          const ids = [...state.keys()];
          const target = ids.length ? ids[("pick" in o ? o.pick : 0) % ids.length] : undefined;
          const base = "/v1/collections/notes/records";
          if (o.kind === "create")
            await api(base, {
              token: alice.accessToken,
              body: { title: o.title, ...(o.withId ? { id: crypto.randomUUID() } : {}) },
            });
          else if (o.kind === "update" && target)
            await api(`${base}/${target}`, { method: "PATCH", token: alice.accessToken, body: { pinned: o.pinned } });
          else if (o.kind === "delete" && target)
            await api(`${base}/${target}`, { method: "DELETE", token: alice.accessToken });
          else if (o.kind === "batch") {
            const operations = Array.from({ length: o.n }, (_, i) => ({
              op: "create",
              collection: "notes",
              data: { title: `batch ${i}` },
            }));
            if (target)
              operations.push({ op: "update", collection: "notes", id: target, data: { body: "batched" } } as never);
            await api("/v1/batch", { token: alice.accessToken, body: { operations } });
          }
        }
        // Wait until the socket has caught up with the log (the last cursor a full sync reports).
        let full: Record<string, unknown>[] = [];
        let end = 0;
        for (let cursor: string | undefined; ; ) {
          const page = await api(`/v1/collections/notes/changes?limit=200${cursor ? `&since=${cursor}` : ""}`, {
            token: alice.accessToken,
          });
          full = full.concat(page.body.items);
          cursor = page.body.nextCursor;
          end = seqOf(cursor!);
          if (!page.body.hasMore) break;
        }
        const caughtUp = () => {
          applyNew();
          return lastSeq >= end;
        };
        if (!caughtUp() && !(await sub.until(0, caughtUp)))
          throw new Error(`socket at ${lastSeq}, log at ${end} after ${JSON.stringify(ops)}`);
        const expected = new Map(full.filter((i) => !i.deleted).map((i) => [i.id as string, i]));
        expect(Object.fromEntries(state)).toEqual(Object.fromEntries(expected));
      }),
      fcParams(),
    );
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Message } from "../src/index.js";
import { client, email, Net, PASSWORD, Sockets } from "./helpers.js";
import { startWorker } from "./worker.mjs";

/** A second Worker whose chat limiter keeps its production budget (30 messages per user per 10 s). */
let limited: Awaited<ReturnType<typeof startWorker>>;
beforeAll(async () => {
  limited = await startWorker({ build: false, realLimits: ["CHAT_LIMITER"] });
});
afterAll(() => limited?.dispose());

describe("sends past the rate limit", () => {
  it("40 quick sends against 30 per 10 s: all stored once, in the order sent, Retry-After honoured", async () => {
    const net = new Net();
    const sa = new Sockets();
    const a = client({ url: limited.url, net, WebSocket: sa.Ctor });
    const b = client({ url: limited.url });
    await a.auth.signUp({ email: email("burst"), password: PASSWORD });
    await b.auth.signUp({ email: email("burst"), password: PASSWORD });
    const room = await a.rooms.create({ memberIds: [b.user!.id] });
    const ra = a.room(room.id);
    const ready = new Promise<void>((ok) => ra.on("ready", () => ok()));
    ra.connect({ afterSeq: 0 });
    await ready;

    const texts = Array.from({ length: 40 }, (_, i) => `m${i + 1}`);
    const t0 = Date.now();
    const sent: Message[] = await Promise.all(texts.map((text) => ra.send({ text })));
    const took = Date.now() - t0;
    expect(sent.map((m) => m.text)).toEqual(texts);

    const stored: Message[] = [];
    for (let after = 0; ; ) {
      const page = await ra.history({ after, limit: 100 });
      stored.push(...page.items);
      if (!page.items.length || stored.length >= 40) break;
      after = page.items[page.items.length - 1]!.seq;
    }
    expect(stored.map((m) => m.text)).toEqual(texts);
    // The server did refuse some (a real 429 over REST), and the SDK waited as told, not longer.
    expect(net.log.some((e) => e.status === 429)).toBe(true);
    expect(took).toBeLessThan(25_000);
    a.close();
    b.close();
  });
});

/**
 * Query budget of a busy chat room (issue 14): D1 statements per message at a sustained
 * 100 messages per second in one room. The room's env gets the counting D1 binding; time is the
 * room's test clock (10 ms per message), so the figure does not depend on how fast this machine
 * runs the test. Every statement counts: each one of a batch, and anything the alarm runs.
 */
import { afterAll, expect, it } from "vitest";
import type { Job } from "../../src/jobs";
import { advance, connect, createGroup, d1Room, inRoom, onTestClock } from "../features/chat/helpers";
import { signup } from "../helpers/api";
import { countingD1, type D1Counter } from "./counting-d1";

const report: string[] = [];
afterAll(() => {
  if (report.length) console.log(report.join("\n"));
});

// The mirror writes and the read positions are coalesced into the room's flushes.
it("a room at a sustained 100 msgs/s makes at most 0.1 D1 statements per message", async () => {
  const [alice, bob, carol] = [await signup({ name: "Alice" }), await signup(), await signup()];
  const room = await createGroup(alice, [bob, carol], "Busy");
  const { socket } = await connect(alice, room.id);
  const b = await connect(bob, room.id);
  await onTestClock(room.id);
  await inRoom(room.id, (r) => {
    const { db, counter } = countingD1(r.env.DB);
    (r as unknown as { counter: D1Counter }).counter = counter;
    // The production send limit (30 per 10 s of real time) would stop a simulated 100 msgs/s.
    r.env = { ...r.env, DB: db, CHAT_LIMITER: { limit: async () => ({ success: true }) } as unknown as RateLimit };
  });

  const N = 500;
  for (let i = 1; i <= N; i++) {
    await advance(room.id, 10);
    socket.send({ type: "send", clientId: `busy-${i}`, text: `message ${i}` });
    await socket.messages(1);
    // Bob reads along now and then (read frames are coalesced too).
    if (i % 50 === 0) b.socket.send({ type: "read", seq: i });
  }
  await b.socket.messages(N);
  // Let the last paced flush run, and wait for it.
  await advance(room.id, 1000);
  await inRoom(room.id, (r) => r.flushNow());

  const { calls, statements, roundTrips } = await inRoom(room.id, (r) => {
    const c = (r as unknown as { counter: D1Counter }).counter;
    return {
      calls: c.calls.map((x) => `${x.kind}(${x.statements})`),
      statements: c.calls.reduce((n, x) => n + x.statements, 0),
      roundTrips: c.roundTrips,
    };
  });
  report.push(
    `chat at 100 msgs/s, ${N} messages: ${statements} D1 statements in ${roundTrips} round trips = ` +
      `${(statements / N).toFixed(3)} statements and ${(roundTrips / N).toFixed(3)} round trips per message`,
  );
  expect(statements / N, calls.join(" + ")).toBeLessThanOrEqual(0.1);

  // All of it reached D1 and the push queue, once.
  const d1 = await d1Room(room.id);
  expect(d1.lastSeq).toBe(N);
  expect(d1.reads).toEqual({ [alice.id]: N, [bob.id]: N, [carol.id]: 0 });
  const jobs = await inRoom(room.id, (r) => r.test.jobs as Extract<Job, { type: "chat.message" }>[]);
  expect(jobs.map((j) => j.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
  expect(new Set(jobs.map((j) => j.recipients.join()))).toEqual(new Set([carol.id]));
  socket.close();
  b.socket.close();
});

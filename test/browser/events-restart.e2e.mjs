// After hooks across a restart of the local runtime (test/browser/server.mjs: the deploy bundle on
// workerd, its storage on disk). A sign-up writes its `users.create` event in the same transaction as
// the account; the runtime stops before its Queue message is consumed (the first start has no
// consumer: the job dies with it). The second start, on the same storage, runs the cron: its
// backstop drains the event, the Queue runs the welcome-mail hook, and the mail is sent once; more
// cron runs and more time do not send it again. Runs under Node's test runner with the console tests.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { startWorker } from "./server.mjs";

const HOUSEKEEPING = "*/15 * * * *";
let worker;

after(async () => {
  await worker?.stop();
});

async function outboxTo(mf, email) {
  const db = await mf.getD1Database("DB");
  const r = await db.prepare('SELECT subject FROM dev_outbox WHERE "to" = ?').bind(email).all();
  return r.results.map((m) => m.subject);
}

async function until(what, check, ms = 20_000) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe("after hooks across a restart of the local runtime", () => {
  it("an event written before the runtime stopped runs once after it starts again", async () => {
    worker = await startWorker();
    const email = `restart.${Date.now()}@example.com`;
    const res = await fetch(`${worker.url}/v1/auth/signup`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, password: "correct horse battery staple" }),
    });
    assert.equal(res.status, 201);
    const userId = (await res.json()).user.id;
    const db = await worker.mf.getD1Database("DB");
    const event = await db.prepare("SELECT seq, dispatched FROM events WHERE record_id = ?").bind(userId).first();
    assert.ok(event, "the sign-up wrote its users.create event with the account");
    assert.equal(event.dispatched, 0);
    assert.deepEqual(await outboxTo(worker.mf, email), []);

    // The runtime goes away with the drain job unconsumed; the storage stays.
    const again = worker.restartInfo;
    await worker.stop({ keep: true });
    worker = await startWorker({ again, consumer: true });

    const cron = await worker.mf.getWorker();
    await cron.scheduled({ cron: HOUSEKEEPING });
    const sent = await until("the welcome mail", async () => {
      const subjects = await outboxTo(worker.mf, email);
      return subjects.length ? subjects : null;
    });
    assert.deepEqual(sent, ["Welcome to Outpost"]);

    // More cron runs, and time for any duplicate job to arrive: still one mail, one finished run.
    await cron.scheduled({ cron: HOUSEKEEPING });
    await new Promise((r) => setTimeout(r, 3000));
    assert.deepEqual(await outboxTo(worker.mf, email), ["Welcome to Outpost"]);
    const runs = await (await worker.mf.getD1Database("DB"))
      .prepare("SELECT status, attempts FROM event_runs WHERE seq = ?")
      .bind(event.seq)
      .all();
    assert.deepEqual(runs.results, [{ status: "done", attempts: 1 }]);
  });
});

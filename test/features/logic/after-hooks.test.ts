/**
 * After hooks, exactly once per change: a write somebody listens to queues one drain; the drain
 * makes one run per target; a run is claimed before it runs, so a redelivered job, a second drain or
 * a retry never runs a finished change again; failures back off, then park; the cron's backstop
 * recovers what a lost job or a dead Worker left. Jobs go to a recording queue and the test runs
 * them itself (test/features/push/helpers.ts), so every step is observed.
 */
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { primaryDb } from "../../../src/db";
import { eventsTargets } from "../../../src/features/events";
import {
  backstop,
  drain,
  type Executor,
  HOOK_ATTEMPTS,
  hookRetryAt,
  runAgain,
  runOne,
} from "../../../src/features/events/pipeline";
import { shapeEvent } from "../../../src/features/events/shape";
import { api, signup, type TestUser, uniqueEmail } from "../../helpers/api";
import { callRecording, jobsOf, recordingEnv, runJobs } from "../push/helpers";

const db = () => primaryDb(env.DB);

const outboxTo = async (email: string) =>
  (await env.DB.prepare('SELECT subject FROM dev_outbox WHERE "to" = ?').bind(email).all<{ subject: string }>())
    .results;

const runOf = (id: string) =>
  env.DB.prepare("SELECT * FROM event_runs WHERE id = ?")
    .bind(id)
    .first<{ status: string; attempts: number; next_attempt_at: string; last_error: string | null; seq: number }>();

/** Signs up through the Worker with a recording queue: the drain job it queued, and the email. */
async function recordedSignup(rec: ReturnType<typeof recordingEnv>) {
  const email = uniqueEmail();
  const res = await callRecording(rec.env, "/v1/auth/signup", { body: { email, password: "correct horse battery" } });
  expect(res.status).toBe(201);
  return { email, userId: res.body.user.id as string };
}

/**
 * Drains with the recording env (clearing its queue) and returns the run jobs it queued for the
 * changes of `recordId` (other tests' events may be waiting in the same outbox).
 */
async function drained(rec: ReturnType<typeof recordingEnv>, recordId: string): Promise<string[]> {
  rec.queued.length = 0;
  while ((await drain(rec.env, db())) > 0);
  const mine = await env.DB.prepare(
    "SELECT r.id FROM event_runs r JOIN events e ON e.seq = r.seq WHERE e.record_id = ?",
  )
    .bind(recordId)
    .all<{ id: string }>();
  const ids = new Set(mine.results.map((r) => r.id));
  const queued = jobsOf(rec.queued, "events.run")
    .map((j) => j.body.id)
    .filter((id) => ids.has(id));
  rec.queued.length = 0;
  return queued;
}

afterEach(async () => {
  await env.DB.prepare("DELETE FROM event_listeners WHERE source = 'test'").run();
});

describe("a write nobody listens to", () => {
  it("queues no drain and writes no event (notes have no after hook and no webhook)", async () => {
    const rec = recordingEnv();
    const user = await signup();
    const before = await env.DB.prepare("SELECT count(*) AS n FROM events").first<{ n: number }>();
    const res = await callRecording(rec.env, "/v1/collections/notes/records", {
      token: user.accessToken,
      body: { title: "quiet" },
    });
    expect(res.status).toBe(201);
    expect(jobsOf(rec.queued, "events.drain")).toEqual([]);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM events").first()).toEqual(before);
  });

  it("a listener makes the same write queue one drain (and the event is in the outbox)", async () => {
    await env.DB.prepare("INSERT INTO event_listeners (event, source) VALUES ('notes.create', 'test')").run();
    const rec = recordingEnv();
    const user = await signup();
    const res = await callRecording(rec.env, "/v1/collections/notes/records", {
      token: user.accessToken,
      body: { title: "heard", tags: ["a", "b"], pinned: true },
    });
    expect(jobsOf(rec.queued, "events.drain")).toHaveLength(1);
    const row = await env.DB.prepare("SELECT * FROM events WHERE record_id = ?")
      .bind(res.body.id)
      .first<{ event: string; record: string; previous: string | null }>();
    expect(row).toMatchObject({ event: "notes.create", previous: null });
    expect(JSON.parse(row!.record)).toMatchObject({ title: "heard", pinned: 1, owner_id: user.id });
  });
});

describe("the welcome mail (users after create)", () => {
  it("runs once: one drain, one run, one mail; a redelivered job and a second drain do nothing", async () => {
    const rec = recordingEnv();
    const { email, userId } = await recordedSignup(rec);
    expect(jobsOf(rec.queued, "events.drain")).toHaveLength(1);
    const [id, ...more] = await drained(rec, userId);
    expect(more).toEqual([]);
    expect(await runOne(rec.env, db(), id!, eventsTargets)).toBe("done");
    expect(await outboxTo(email)).toEqual([{ subject: "Welcome to Outpost" }]);
    // The Queue delivers the same message again, through the Worker's own consumer: nothing runs.
    await runJobs(rec.env, [{ body: { type: "events.run", id: id! } }]);
    expect(await runOne(rec.env, db(), id!, eventsTargets)).toBe("skipped");
    expect(await drained(rec, userId)).toEqual([]);
    expect(await outboxTo(email)).toHaveLength(1);
    expect(await runOf(id!)).toMatchObject({ status: "done", attempts: 1 });
  });

  it("two copies of the run job at once: one runs, the other finds it claimed", async () => {
    const rec = recordingEnv();
    const { email, userId } = await recordedSignup(rec);
    const [id] = await drained(rec, userId);
    const outcomes = await Promise.all([
      runOne(rec.env, db(), id!, eventsTargets),
      runOne(rec.env, db(), id!, eventsTargets),
    ]);
    expect(outcomes.sort()).toEqual(["done", "skipped"]);
    expect(await outboxTo(email)).toHaveLength(1);
  });

  it("the hook gets the new account in the API's shape, never its password hash", async () => {
    let seen: unknown;
    const spy: Executor = async (_e, _d, _r, event) => {
      seen = event;
      return { ok: true };
    };
    const rec = recordingEnv();
    const { email, userId } = await recordedSignup(rec);
    const [id] = await drained(rec, userId);
    await runOne(rec.env, db(), id!, () => ({ execute: spy, retryAt: hookRetryAt }));
    expect(seen).toMatchObject({
      event: "users.create",
      recordId: userId,
      previous: null,
      record: { id: userId, email, emailVerified: false, anonymous: false },
    });
    expect(JSON.stringify(seen)).not.toContain("pbkdf2");
  });
});

describe("failures", () => {
  it("a run that throws once is retried after its backoff with the same id and change, then done", async () => {
    const rec = recordingEnv();
    const { userId } = await recordedSignup(rec);
    const [id] = await drained(rec, userId);
    const seqs: number[] = [];
    let calls = 0;
    const flaky: Executor = async (_e, _d, run, event) => {
      seqs.push(event.seq);
      expect(run.id).toBe(id);
      if (++calls === 1) throw new Error("the mail provider is down");
      return { ok: true };
    };
    const targets = () => ({ execute: flaky, retryAt: hookRetryAt });
    const t0 = Date.now();
    expect(await runOne(rec.env, db(), id!, targets, () => new Date(t0))).toBe("retry");
    expect(await runOf(id!)).toMatchObject({ status: "pending", attempts: 1, last_error: "the mail provider is down" });
    const retry = jobsOf(rec.queued, "events.run");
    expect(retry).toEqual([{ body: { type: "events.run", id }, delaySeconds: 10 }]);
    // Before it is due, a copy of the job does nothing; when due, it runs.
    expect(await runOne(rec.env, db(), id!, targets, () => new Date(t0 + 2_000))).toBe("skipped");
    expect(await runOne(rec.env, db(), id!, targets, () => new Date(t0 + 10_000))).toBe("done");
    expect(seqs).toHaveLength(2);
    expect(new Set(seqs).size).toBe(1);
    expect(await runOf(id!)).toMatchObject({ status: "done", attempts: 2 });
  });

  it("backs off 10 s, 20 s, 40 s … and parks after the last attempt; run again runs it", async () => {
    const rec = recordingEnv();
    const { userId } = await recordedSignup(rec);
    const [id] = await drained(rec, userId);
    const failing = () => ({
      execute: (async () => ({ ok: false, error: "nope" })) as Executor,
      retryAt: hookRetryAt,
    });
    let now = Date.now();
    const delays: number[] = [];
    for (let attempt = 1; attempt <= HOOK_ATTEMPTS; attempt++) {
      rec.queued.length = 0;
      const r = await runOne(rec.env, db(), id!, failing, () => new Date(now));
      if (attempt < HOOK_ATTEMPTS) {
        expect(r).toBe("retry");
        const d = jobsOf(rec.queued, "events.run")[0]!.delaySeconds!;
        delays.push(d);
        now += d * 1000;
      } else expect(r).toBe("parked");
    }
    expect(delays).toEqual([10, 20, 40, 80, 160, 320, 640]);
    expect(await runOf(id!)).toMatchObject({ status: "parked", attempts: HOOK_ATTEMPTS, last_error: "nope" });
    // Parked: no job brings it back by itself.
    expect(await runOne(rec.env, db(), id!, failing, () => new Date(now + 86_400_000))).toBe("skipped");
    rec.queued.length = 0;
    expect(await runAgain(rec.env, db(), id!)).toBe(true);
    expect(jobsOf(rec.queued, "events.run")).toEqual([{ body: { type: "events.run", id } }]);
    expect(await runOne(rec.env, db(), id!, eventsTargets)).toBe("done");
    expect(await runAgain(rec.env, db(), "no-such-run")).toBe(false);
  });
});

describe("the drain", () => {
  it("over more than 100 waiting events: 100 per job, another drain queued, every run made once", async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const ids = Array.from({ length: 150 }, (_, i) => `${tag}-${i}`);
    await env.DB.prepare(
      "INSERT INTO events (event, record_id, record, previous, at) SELECT 'users.create', value, '{}', NULL, ? FROM json_each(?)",
    )
      .bind(new Date().toISOString(), JSON.stringify(ids))
      .run();
    const rec = recordingEnv();
    expect(await drain(rec.env, db())).toBe(100);
    expect(jobsOf(rec.queued, "events.drain")).toHaveLength(1);
    while ((await drain(rec.env, db())) > 0);
    const runs = await env.DB.prepare(
      "SELECT count(*) AS n, count(DISTINCT e.seq) AS events FROM event_runs r JOIN events e ON e.seq = r.seq WHERE e.record_id LIKE ?",
    )
      .bind(`${tag}-%`)
      .first();
    expect(runs).toEqual({ n: 150, events: 150 });
    expect(
      await env.DB.prepare("SELECT count(*) AS n FROM events WHERE record_id LIKE ? AND dispatched = 0")
        .bind(`${tag}-%`)
        .first(),
    ).toEqual({ n: 0 });
  });
});

describe("the backstop (cron)", () => {
  it("drains events whose drain job was lost", async () => {
    const rec = recordingEnv();
    const { email } = await recordedSignup(rec);
    rec.queued.length = 0; // the drain job is lost
    const r = await backstop(rec.env, db(), new Date());
    expect(r.drained).toBe(true);
    await runJobs(rec.env, jobsOf(rec.queued, "events.drain"));
    const runs = jobsOf(rec.queued, "events.run");
    expect(runs.length).toBeGreaterThan(0);
    await runJobs(rec.env, runs);
    expect(await outboxTo(email)).toHaveLength(1);
  });

  it("re-sends a run whose Worker died mid-run once its lease is over, and it completes once", async () => {
    const rec = recordingEnv();
    const { email, userId } = await recordedSignup(rec);
    const [id] = await drained(rec, userId);
    // A Worker claimed it and died: running, its lease long over, no job left.
    await env.DB.prepare(
      "UPDATE event_runs SET status = 'running', attempts = 1, lease_until = ?, next_attempt_at = ? WHERE id = ?",
    )
      .bind(new Date(Date.now() - 60_000).toISOString(), new Date(Date.now() - 600_000).toISOString(), id)
      .run();
    await backstop(rec.env, db(), new Date());
    expect(jobsOf(rec.queued, "events.run").map((j) => j.body.id)).toContain(id);
    await runJobs(rec.env, [{ body: { type: "events.run", id: id! } }]);
    expect(await runOf(id!)).toMatchObject({ status: "done", attempts: 2 });
    expect(await outboxTo(email)).toHaveLength(1);
  });

  it("leaves a run alone while its lease holds", async () => {
    const rec = recordingEnv();
    const { userId } = await recordedSignup(rec);
    const [id] = await drained(rec, userId);
    await env.DB.prepare("UPDATE event_runs SET status = 'running', lease_until = ?, next_attempt_at = ? WHERE id = ?")
      .bind(new Date(Date.now() + 60_000).toISOString(), new Date(Date.now() - 600_000).toISOString(), id)
      .run();
    rec.queued.length = 0;
    await backstop(rec.env, db(), new Date());
    expect(jobsOf(rec.queued, "events.run").map((j) => j.body.id)).not.toContain(id);
    expect(await runOne(rec.env, db(), id!, eventsTargets)).toBe("skipped");
  });
});

describe("comments after create: the post's author is told", () => {
  let author: TestUser;
  let reader: TestUser;
  beforeAll(async () => {
    [author, reader] = [await signup(), await signup()];
  });

  it("a comment by someone else queues one push to the author; the author's own comment none", async () => {
    const post = (await api("/v1/collections/posts/records", { token: author.accessToken, body: { text: "hi" } })).body;
    const rec = recordingEnv();
    const ids: string[] = [];
    for (const [who, text] of [
      [reader, "nice post"],
      [author, "thanks"],
    ] as const) {
      const res = await callRecording(rec.env, "/v1/collections/comments/records", {
        token: who.accessToken,
        body: { postId: post.id, text },
      });
      expect(res.status).toBe(201);
      ids.push(...(await drained(rec, res.body.id)));
    }
    expect(ids).toHaveLength(2);
    await runJobs(
      rec.env,
      ids.map((id) => ({ body: { type: "events.run" as const, id } })),
    );
    const pushes = jobsOf(rec.queued, "push.send").filter((j) => j.body.message.data.postId === post.id);
    expect(pushes.map((p) => ({ to: p.body.userIds, body: p.body.message.body }))).toEqual([
      { to: [author.id], body: "nice post" },
    ]);
  });
});

describe("event images", () => {
  it("an update carries the record and its previous version in the API's shape (booleans, arrays)", async () => {
    await env.DB.prepare("INSERT INTO event_listeners (event, source) VALUES ('notes.update', 'test')").run();
    const user = await signup();
    const note = (
      await api("/v1/collections/notes/records", { token: user.accessToken, body: { title: "v1", tags: ["x"] } })
    ).body;
    await api(`/v1/collections/notes/records/${note.id}`, {
      method: "PATCH",
      token: user.accessToken,
      body: { title: "v2", pinned: true, tags: ["x", "y"] },
    });
    const rec = recordingEnv();
    await drain(rec.env, db());
    const run = await env.DB.prepare(
      "SELECT r.id FROM event_runs r JOIN events e ON e.seq = r.seq WHERE e.record_id = ? AND e.event = 'notes.update'",
    )
      .bind(note.id)
      .first<{ id: string }>();
    // The listener is the test's (no hook, no webhook): no run is made for it.
    expect(run).toBeNull();
    const row = await env.DB.prepare("SELECT * FROM events WHERE record_id = ? AND event = 'notes.update'")
      .bind(note.id)
      .first<{ seq: number; event: string; record_id: string; record: string; previous: string; at: string }>();
    const seen = shapeEvent({ ...row!, recordId: row!.record_id });
    expect(seen.previous).toMatchObject({ title: "v1", pinned: false, tags: ["x"], version: 1 });
    expect(seen.record).toMatchObject({ title: "v2", pinned: true, tags: ["x", "y"], version: 2, ownerId: user.id });
  });

  it("a delete's cascade raises the referrers' delete events in the same batch", async () => {
    await env.DB.prepare("INSERT INTO event_listeners (event, source) VALUES ('comments.delete', 'test')").run();
    const user = await signup();
    const post = (await api("/v1/collections/posts/records", { token: user.accessToken, body: { text: "p" } })).body;
    const ids: string[] = [];
    for (const text of ["one", "two"])
      ids.push(
        (
          await api("/v1/collections/comments/records", {
            token: user.accessToken,
            body: { postId: post.id, text },
          })
        ).body.id,
      );
    const rec = recordingEnv();
    const res = await callRecording(rec.env, `/v1/collections/posts/records/${post.id}`, {
      method: "DELETE",
      token: user.accessToken,
    });
    expect(res.status).toBe(204);
    // posts.delete raises comments.delete (cascade): the write knew someone listens.
    expect(jobsOf(rec.queued, "events.drain")).toHaveLength(1);
    const rows = await env.DB.prepare(
      `SELECT record_id, previous FROM events WHERE event = 'comments.delete' AND record_id IN (?, ?)`,
    )
      .bind(ids[0], ids[1])
      .all<{ record_id: string; previous: string }>();
    expect(rows.results.map((r) => r.record_id).sort()).toEqual([...ids].sort());
    expect(JSON.parse(rows.results[0]!.previous)).toMatchObject({ post_id: post.id });
  });
});

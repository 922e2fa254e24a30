/**
 * Webhooks end to end: a write somebody's webhook listens to → the drain → the run → a signed POST at
 * the receiver. Once through the real Queue (polling the receiver, with a deadline), and once with a
 * recording queue the test runs itself, to watch a failed attempt come back with the same id.
 */
import { env } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import { primaryDb } from "../../../src/db";
import { eventsTargets } from "../../../src/features/events";
import { drain, runOne } from "../../../src/features/events/pipeline";
import { api, serviceKey, signup } from "../../helpers/api";
import { callRecording, jobsOf, recordingEnv } from "../push/helpers";
import {
  createHook,
  forgetWebhooks,
  hmacHex,
  parseSignature,
  received,
  receiverName,
  receiverUrl,
  steer,
} from "./helpers";

afterAll(forgetWebhooks);

/** Polls receiver `name` until it got `n` requests, or fails after `ms`. */
async function waitForDeliveries(name: string, n: number, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await received(name);
    if (got.length >= n) return got;
    if (Date.now() > deadline) throw new Error(`receiver ${name} got ${got.length} of ${n} deliveries in ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe("a write to a collection a webhook listens to", () => {
  it("reaches the receiver through the Queue, signed, with the record as the API shows it", async () => {
    const name = receiverName("e2e");
    const hook = await createHook(receiverUrl(name), ["notes.create"]);
    const user = await signup();
    const list = await api("/v1/collections/notes/records", { token: user.accessToken, body: { title: "Groceries" } });
    expect(list.status, list.text).toBe(201);
    const [req] = await waitForDeliveries(name, 1);
    const body = JSON.parse(req!.body);
    expect(body).toMatchObject({ event: "notes.create", data: { id: list.body.id, title: "Groceries" } });
    const sig = parseSignature(req!.headers["outpost-signature"]!);
    expect(sig.v1).toEqual([await hmacHex(hook.secret, `${sig.t}.${req!.body}`)]);
    // The deliveries list shows it done, under the id the receiver got.
    let items: { id: string; status: string }[] = [];
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
      items = (await api(`/v1/admin/webhooks/${hook.id}/deliveries`, { token: serviceKey() })).body.items;
      if (items[0]?.status === "done") break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(items).toMatchObject([{ id: body.id, event: "notes.create", status: "done", attempts: 1 }]);
  });

  it("is retried after a failure with the same delivery id, then done", async () => {
    const rec = recordingEnv();
    const name = receiverName("e2e");
    const hook = await createHook(receiverUrl(name), ["notes.update"]);
    const user = await signup();
    const list = await api("/v1/collections/notes/records", { token: user.accessToken, body: { title: "Before" } });
    const patched = await callRecording(rec.env, `/v1/collections/notes/records/${list.body.id}`, {
      method: "PATCH",
      token: user.accessToken,
      body: { title: "After" },
    });
    expect(patched.status).toBe(200);
    expect(jobsOf(rec.queued, "events.drain")).toHaveLength(1);
    rec.queued.length = 0;
    const db = primaryDb(env.DB);
    while ((await drain(rec.env, db)) > 0);
    const runs = await env.DB.prepare("SELECT id FROM event_runs WHERE target = ?").bind(hook.id).all<{ id: string }>();
    const [delivery] = runs.results.map((r) => r.id);
    expect(jobsOf(rec.queued, "events.run").map((j) => j.body.id)).toContain(delivery);

    await steer(name, { failTimes: 1, status: 502 });
    expect(await runOne(rec.env, db, delivery!, eventsTargets)).toBe("retry");
    const failed = await env.DB.prepare(
      "SELECT status, attempts, last_error, last_status, next_attempt_at FROM event_runs WHERE id = ?",
    )
      .bind(delivery)
      .first<{ status: string; attempts: number; last_error: string; last_status: number; next_attempt_at: string }>();
    expect(failed).toMatchObject({ status: "pending", attempts: 1, last_error: "HTTP 502", last_status: 502 });
    // The first retry is 30 s later; the test moves the run's time instead of waiting.
    expect(Math.abs(Date.parse(failed!.next_attempt_at) - Date.now() - 30_000)).toBeLessThan(5_000);
    await env.DB.prepare("UPDATE event_runs SET next_attempt_at = ? WHERE id = ?")
      .bind(new Date().toISOString(), delivery)
      .run();
    expect(await runOne(rec.env, db, delivery!, eventsTargets)).toBe("done");
    const bodies = (await received(name)).map((r) => JSON.parse(r.body));
    expect(bodies.map((b) => b.id)).toEqual([delivery, delivery]);
    expect(bodies[1]).toMatchObject({
      event: "notes.update",
      data: { id: list.body.id, title: "After" },
      previous: { id: list.body.id, title: "Before" },
    });
  });
});

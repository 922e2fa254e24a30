/**
 * One delivery attempt (`deliverWebhook`) against the receiver stand-in: the body and its signature
 * (checked with the test's own HMAC), both signatures after a rotation, the same id on every attempt,
 * redirects not followed, the URL checked again, the 24-hour disable (listener rows gone, the admins
 * mailed), and the retry schedule.
 */
import { env } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import { eventsTargets } from "../../../src/features/events";
import { runOne } from "../../../src/features/events/pipeline";
import { deliverWebhook, webhookRetryAt } from "../../../src/features/webhooks";
import { api, serviceKey } from "../../helpers/api";
import { latestMailTo } from "../../helpers/outbox";
import { signupAdmin } from "../admin/helpers";
import {
  createHook,
  db,
  forgetWebhooks,
  hmacHex,
  hookRow,
  listenersOf,
  makeRun,
  parseSignature,
  received,
  receiverName,
  receiverUrl,
  steer,
} from "./helpers";

// The webhooks made here listen to notes and lists: leave no listener behind for the files after this one.
afterAll(forgetWebhooks);

describe("a delivery", () => {
  it("POSTs { id, event, createdAt, data } signed t=<unix>,v1=<HMAC-SHA256(secret, t.body)>", async () => {
    const name = receiverName();
    const hook = await createHook(receiverUrl(name), ["notes.create"]);
    const { run, event } = await makeRun(hook.id);
    const before = Math.floor(Date.now() / 1000);
    expect(await deliverWebhook(env, db(), run, event)).toEqual({ ok: true, status: 200 });
    const [req, ...more] = await received(name);
    expect(more).toEqual([]);
    expect(req!.method).toBe("POST");
    expect(req!.headers["content-type"]).toMatch(/^application\/json/);
    expect(JSON.parse(req!.body)).toEqual({
      id: run.id,
      event: "notes.create",
      createdAt: event.at,
      data: event.record,
    });
    const sig = parseSignature(req!.headers["outpost-signature"]!);
    expect(Number(sig.t)).toBeGreaterThanOrEqual(before);
    expect(Number(sig.t)).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(sig.v1).toEqual([await hmacHex(hook.secret, `${sig.t}.${req!.body}`)]);
    // The signature covers the body and the time: another secret or another time does not match.
    expect(sig.v1[0]).not.toBe(await hmacHex(`${hook.secret}x`, `${sig.t}.${req!.body}`));
    expect(sig.v1[0]).not.toBe(await hmacHex(hook.secret, `${Number(sig.t) + 1}.${req!.body}`));
  });

  it("carries the previous record of an update, and the record as it was for a delete", async () => {
    const name = receiverName();
    const hook = await createHook(receiverUrl(name), ["notes.update", "notes.delete"]);
    const old = { id: "n1", title: "Old", version: 1 };
    const now = { id: "n1", title: "New", version: 2 };
    const update = await makeRun(hook.id, { event: "notes.update", record: now, previous: old });
    const del = await makeRun(hook.id, { event: "notes.delete", record: null, previous: now });
    expect((await deliverWebhook(env, db(), update.run, update.event)).ok).toBe(true);
    expect((await deliverWebhook(env, db(), del.run, del.event)).ok).toBe(true);
    const [u, d] = (await received(name)).map((r) => JSON.parse(r.body));
    expect(u).toMatchObject({ id: update.run.id, event: "notes.update", data: now, previous: old });
    expect(d).toEqual({ id: del.run.id, event: "notes.delete", createdAt: del.event.at, data: now });
  });

  it("after a rotation carries two v1= signatures, one per secret, until the old secret expires", async () => {
    const name = receiverName();
    const hook = await createHook(receiverUrl(name), ["notes.create"]);
    const rotated = await api(`/v1/admin/webhooks/${hook.id}/rotate-secret`, { token: serviceKey(), body: {} });
    expect(rotated.status, rotated.text).toBe(200);
    const secret = rotated.body.secret as string;
    expect(secret).not.toBe(hook.secret);
    const first = await makeRun(hook.id);
    expect((await deliverWebhook(env, db(), first.run, first.event)).ok).toBe(true);
    const [req] = await received(name);
    const sig = parseSignature(req!.headers["outpost-signature"]!);
    const signed = `${sig.t}.${req!.body}`;
    expect(sig.v1).toHaveLength(2);
    expect(sig.v1).toContain(await hmacHex(secret, signed));
    expect(sig.v1).toContain(await hmacHex(hook.secret, signed));
    // Once previous_until has passed, only the new secret signs.
    await env.DB.prepare("UPDATE webhooks SET previous_until = ? WHERE id = ?")
      .bind(new Date(Date.now() - 1000).toISOString(), hook.id)
      .run();
    const second = await makeRun(hook.id);
    expect((await deliverWebhook(env, db(), second.run, second.event)).ok).toBe(true);
    const [, req2] = await received(name);
    const sig2 = parseSignature(req2!.headers["outpost-signature"]!);
    expect(sig2.v1).toEqual([await hmacHex(secret, `${sig2.t}.${req2!.body}`)]);
  });

  it("is retried with the same id; a failure starts the failure clock and a success stops it", async () => {
    const name = receiverName();
    const hook = await createHook(receiverUrl(name), ["notes.create"]);
    await steer(name, { failTimes: 1, status: 503 });
    const { run, event } = await makeRun(hook.id);
    expect(await deliverWebhook(env, db(), run, event)).toEqual({ ok: false, error: "HTTP 503", status: 503 });
    const failing = (await hookRow(hook.id))!.failing_since;
    expect(failing).not.toBeNull();
    // A second failure keeps the first failure's time.
    await steer(name, { failTimes: 1, status: 500 });
    expect((await deliverWebhook(env, db(), { ...run, attempt: 2 }, event)).ok).toBe(false);
    expect((await hookRow(hook.id))!.failing_since).toBe(failing);
    expect(await deliverWebhook(env, db(), { ...run, attempt: 3 }, event)).toEqual({ ok: true, status: 200 });
    expect((await hookRow(hook.id))!.failing_since).toBeNull();
    const bodies = (await received(name)).map((r) => JSON.parse(r.body));
    expect(bodies.map((b) => b.id)).toEqual([run.id, run.id, run.id]);
  });

  it("does not follow a redirect (to 169.254.169.254): the attempt fails and says so", async () => {
    const name = receiverName();
    const hook = await createHook(receiverUrl(name), ["notes.create"]);
    await steer(name, { redirectTo: "http://169.254.169.254/latest/meta-data/" });
    const { run, event } = await makeRun(hook.id);
    const out = await deliverWebhook(env, db(), run, event);
    expect(out).toMatchObject({ ok: false, status: 302 });
    expect(!out.ok && out.error).toMatch(/redirect.*169\.254\.169\.254.*not followed/);
    // One request, to the receiver; nothing followed it.
    expect(await received(name)).toHaveLength(1);
  });

  it("checks the URL again: a webhook whose stored URL is refused now is not called", async () => {
    const name = receiverName();
    const hook = await createHook(receiverUrl(name), ["notes.create"]);
    await env.DB.prepare("UPDATE webhooks SET url = ? WHERE id = ?").bind("http://10.0.0.1/hook", hook.id).run();
    const { run, event } = await makeRun(hook.id);
    const out = await deliverWebhook(env, db(), run, event);
    expect(out.ok).toBe(false);
    expect(!out.ok && out.error).toMatch(/^URL refused: .*private/);
    expect(await received(name)).toEqual([]);
  });

  it("fails, without calling, when the stored secret cannot be read (JWT_SECRET changed)", async () => {
    const name = receiverName();
    const hook = await createHook(receiverUrl(name), ["notes.create"]);
    const { run, event } = await makeRun(hook.id);
    const other = { ...env, JWT_SECRET: "another-jwt-secret-0123456789abcdef0123456789" };
    const out = await deliverWebhook(other, db(), run, event);
    expect(out.ok).toBe(false);
    expect(!out.ok && out.error).toMatch(/signing secret cannot be read/);
    expect(await received(name)).toEqual([]);
    // A rotated-out secret that cannot be read is left out; the current one still signs.
    await env.DB.prepare("UPDATE webhooks SET previous_secret = ?, previous_until = ? WHERE id = ?")
      .bind("v1.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAA", new Date(Date.now() + 3600_000).toISOString(), hook.id)
      .run();
    expect((await deliverWebhook(env, db(), run, event)).ok).toBe(true);
    const [req] = await received(name);
    const sig = parseSignature(req!.headers["outpost-signature"]!);
    expect(sig.v1).toEqual([await hmacHex(hook.secret, `${sig.t}.${req!.body}`)]);
  });

  it("refuses, without calling, a deleted or a disabled webhook", async () => {
    const name = receiverName();
    const hook = await createHook(receiverUrl(name), ["notes.create"]);
    await api(`/v1/admin/webhooks/${hook.id}`, { method: "PATCH", token: serviceKey(), body: { enabled: false } });
    // A run made before the disable was parked by it; one still waiting for its attempt (here: made
    // after) meets the disabled webhook.
    const { run, event } = await makeRun(hook.id, { status: "pending" });
    expect(await deliverWebhook(env, db(), run, event)).toEqual({
      ok: false,
      error: "the webhook is disabled",
      final: true,
    });
    // Through the pipeline: no retry can mend it, so the run is parked at its first attempt.
    expect(await runOne(env, db(), run.id, eventsTargets)).toBe("parked");
    const row = await env.DB.prepare("SELECT status, attempts, last_error FROM event_runs WHERE id = ?")
      .bind(run.id)
      .first();
    expect(row).toEqual({ status: "parked", attempts: 1, last_error: "the webhook is disabled" });
    await api(`/v1/admin/webhooks/${hook.id}`, { method: "DELETE", token: serviceKey() });
    expect(await deliverWebhook(env, db(), run, event)).toEqual({
      ok: false,
      error: "the webhook was deleted",
      final: true,
    });
    expect(await received(name)).toEqual([]);
  });

  it("gives up on a receiver that does not answer within 10 seconds", async () => {
    const name = receiverName();
    const hook = await createHook(receiverUrl(name), ["notes.create"]);
    await steer(name, { delayMs: 11_000 });
    const { run, event } = await makeRun(hook.id);
    expect(await deliverWebhook(env, db(), run, event)).toEqual({ ok: false, error: "no answer within 10 s" });
  });
});

describe("a webhook failing for 24 hours", () => {
  it("is disabled: listener rows removed, waiting deliveries parked, every admin mailed", async () => {
    const admin = await signupAdmin();
    const name = receiverName();
    const hook = await createHook(receiverUrl(name), ["notes.create", "notes.update"]);
    const waiting = await makeRun(hook.id, { status: "pending" });
    await steer(name, { failTimes: 10 });
    const { run, event } = await makeRun(hook.id);
    // Failing for 23 hours: still enabled.
    await env.DB.prepare("UPDATE webhooks SET failing_since = ? WHERE id = ?")
      .bind(new Date(Date.now() - 23 * 3600_000).toISOString(), hook.id)
      .run();
    expect((await deliverWebhook(env, db(), run, event)).ok).toBe(false);
    expect((await hookRow(hook.id))!.enabled).toBe(1);
    expect(await latestMailTo(admin.email)).toBeUndefined();
    // Failing for 25 hours: this failure disables it.
    const since = new Date(Date.now() - 25 * 3600_000).toISOString();
    await env.DB.prepare("UPDATE webhooks SET failing_since = ? WHERE id = ?").bind(since, hook.id).run();
    expect(await deliverWebhook(env, db(), { ...run, attempt: 2 }, event)).toMatchObject({ ok: false, status: 500 });
    const row = (await hookRow(hook.id))!;
    expect(row.enabled).toBe(0);
    expect(row.disabled_at).not.toBeNull();
    expect(await listenersOf(hook.id)).toEqual([]);
    const parked = await env.DB.prepare("SELECT status, last_error FROM event_runs WHERE id = ?")
      .bind(waiting.run.id)
      .first<{ status: string; last_error: string }>();
    expect(parked).toEqual({ status: "parked", last_error: "webhook disabled after failing for 24 hours" });
    const mail = await latestMailTo(admin.email);
    expect(mail?.subject).toMatch(/a webhook was disabled/);
    expect(mail?.text).toContain(receiverUrl(name));
    expect(mail?.text).not.toContain(hook.secret);
    // The API shows it disabled; enabling it brings the listener rows back and resets the clock.
    const enabled = await api(`/v1/admin/webhooks/${hook.id}`, {
      method: "PATCH",
      token: serviceKey(),
      body: { enabled: true },
    });
    expect(enabled.body).toMatchObject({ enabled: true, failingSince: null, disabledAt: null });
    expect(await listenersOf(hook.id)).toEqual(["notes.create", "notes.update"]);
  });
});

describe("webhookRetryAt", () => {
  const t0 = Date.parse("2026-01-01T00:00:00.000Z");
  const at = (ms: number) => new Date(t0 + ms);
  const createdAt = at(0).toISOString();

  it("waits 30 s, 2 min, 10 min, 30 min, 1 h, then every 2 h", () => {
    const now = at(5_000);
    const delays = [1, 2, 3, 4, 5, 6, 7, 12].map(
      (attempts) => (Date.parse(webhookRetryAt({ attempts, createdAt }, now)!) - now.getTime()) / 1000,
    );
    expect(delays).toEqual([30, 120, 600, 1800, 3600, 7200, 7200, 7200]);
  });

  it("never schedules past createdAt + 24 h, and gives up once 24 h have passed", () => {
    const day = 24 * 3600_000;
    expect(webhookRetryAt({ attempts: 9, createdAt }, at(day - 60_000))).toBe(at(day).toISOString());
    expect(webhookRetryAt({ attempts: 9, createdAt }, at(day))).toBeNull();
    expect(webhookRetryAt({ attempts: 1, createdAt }, at(day + 1))).toBeNull();
  });
});

/**
 * The console's After hooks page: runs by status (parked by default) for an admin only; "Run again"
 * needs the form's token and a confirmation, queues the run, and leaves its audit row.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { newId } from "../../../src/lib/ids";
import { signup, type TestUser } from "../../helpers/api";
import { signIn, visit } from "./console-helpers";
import { signupAdmin } from "./helpers";

let admin: TestUser;
beforeAll(async () => {
  admin = await signupAdmin();
});

/** A parked run of the welcome-mail hook for a made-up change (as the pipeline leaves one). */
async function parkedRun(error: string) {
  const recordId = newId();
  const at = new Date().toISOString();
  const ev = await env.DB.prepare(
    "INSERT INTO events (event, record_id, record, previous, at, dispatched) VALUES ('users.create', ?, ?, NULL, ?, 1) RETURNING seq",
  )
    .bind(recordId, JSON.stringify({ id: recordId, email: null }), at)
    .first<{ seq: number }>();
  const id = newId();
  await env.DB.prepare(
    "INSERT INTO event_runs (id, seq, target, status, attempts, last_error, next_attempt_at, created_at, finished_at) VALUES (?, ?, 'hook', 'parked', 8, ?, ?, ?, ?)",
  )
    .bind(id, ev!.seq, error, at, at, at)
    .run();
  return { id, recordId };
}

const statusOf = async (id: string) =>
  (await env.DB.prepare("SELECT status, attempts FROM event_runs WHERE id = ?").bind(id).first()) as {
    status: string;
    attempts: number;
  } | null;

describe("the After hooks page", () => {
  it("shows parked runs with their event, attempts and last error, for admins only", async () => {
    const run = await parkedRun("the mail provider said 503");
    const { b } = await signIn(admin);
    const page = await visit(b, "/admin/logic");
    expect(page.status).toBe(200);
    expect(page.html).toContain("users.create");
    expect(page.html).toContain("the mail provider said 503");
    expect(page.html).toContain(`/admin/logic/runs/${run.id}/run-again`);
    expect(page.html).toContain(`/admin/users/${run.recordId}`);

    const user = await signup();
    const stranger = await signIn(user);
    const refused = await visit(stranger.b, "/admin/logic");
    expect(refused.status).not.toBe(200);
    expect(refused.html).not.toContain("the mail provider said 503");
  });

  it("run again: refused without the token, asks first, then queues the run and audits it", async () => {
    const run = await parkedRun("boom");
    const { b, csrf } = await signIn(admin);
    const path = `/admin/logic/runs/${run.id}/run-again`;
    expect((await visit(b, path, { _csrf: "wrong", confirm: "yes" })).status).toBe(403);
    const ask = await visit(b, path, { _csrf: csrf });
    expect(ask.html).toContain("Are you sure?");
    expect(await statusOf(run.id)).toEqual({ status: "parked", attempts: 8 });
    const done = await visit(b, path, { _csrf: csrf, confirm: "yes" });
    expect(done.status).toBe(303);
    expect(done.headers.get("location")).toContain("done=run-queued");
    // Queued: pending with its attempts counted from zero (the real Queue may already be running it).
    const after = await statusOf(run.id);
    expect(["pending", "running", "done"]).toContain(after!.status);
    const audit = await env.DB.prepare("SELECT action, actor_id FROM audit_log WHERE target = ?")
      .bind(`run:${run.id}`)
      .all();
    expect(audit.results).toEqual([{ action: "hook.run_again", actor_id: admin.id }]);
    // A run that is not parked or finished cannot be run again.
    await env.DB.prepare("UPDATE event_runs SET status = 'running' WHERE id = ?").bind(run.id).run();
    expect((await visit(b, path, { _csrf: csrf, confirm: "yes" })).status).toBe(404);
  });

  it("filters by status", async () => {
    const { b } = await signIn(admin);
    const page = await visit(b, "/admin/logic?status=done");
    expect(page.status).toBe(200);
    expect(page.html).toContain('class="tab active"');
    expect(page.html).toMatch(/done \(\d+\)/);
  });
});

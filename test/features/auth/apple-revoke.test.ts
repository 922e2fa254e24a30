/**
 * Sign in with Apple's `authorizationCode` (API.md v1.2): exchanged at Apple's token endpoint (the
 * stand-in checks the ES256 client secret), the refresh token kept sealed, and revoked at Apple through
 * the Queue when the account is deleted (App Store rule 5.1.1(v)), retried after a 5xx.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { limits } from "../../../src/config";
import { primaryDb } from "../../../src/db";
import { appleRevokeBackstop } from "../../../src/features/auth/apple";
import worker from "../../../src/index";
import type { Job } from "../../../src/jobs";
import { api, expectProblem, standinRequests, uniqueEmail } from "../../helpers/api";
import { providerIdToken } from "../../helpers/tokens";
import { callRecording, jobsOf, recordingEnv } from "../push/helpers";

async function appleSignIn(extra: Record<string, unknown>, sub = `apple-${crypto.randomUUID()}`) {
  const idToken = await providerIdToken("apple", {
    sub,
    aud: "com.example.outpost",
    email: uniqueEmail("apple"),
    email_verified: "true",
  });
  return api("/v1/auth/idtoken", { body: { provider: "apple", idToken, ...extra } });
}

const outboxRow = (id: string) =>
  env.DB.prepare("SELECT * FROM apple_revocations WHERE id = ?")
    .bind(id)
    .first<{ attempts: number; next_attempt_at: string }>();

const tokenRow = (userId: string) =>
  env.DB.prepare("SELECT * FROM apple_tokens WHERE user_id = ?").bind(userId).first<Record<string, string>>();

/** Runs jobs through the Worker's queue handler once; returns how many were acked and retried. */
async function deliver(e: Env, jobs: Job[]) {
  const batch = createMessageBatch<Job>(
    "outpost-jobs",
    jobs.map((body, i) => ({ id: `apple-${i}-${crypto.randomUUID()}`, timestamp: new Date(), attempts: 1, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, e);
  const result = await getQueueResult(batch, ctx);
  return { acked: result.explicitAcks.length, retried: result.retryMessages.length };
}

describe("Sign in with Apple: authorizationCode", () => {
  it("is exchanged at Apple with an ES256 client secret; the refresh token is kept sealed", async () => {
    const code = `ok-${crypto.randomUUID()}`;
    const res = await appleSignIn({ authorizationCode: code });
    expect(res.status, res.text).toBe(200);
    const row = await tokenRow(res.body.user.id);
    expect(row?.client_id).toBe("com.example.outpost");
    expect(row?.sealed_refresh_token).toMatch(/^v1\./);
    expect(row?.sealed_refresh_token).not.toContain(code);
    const sent = (await standinRequests("/apple/auth/token")).filter((r) => r.body.includes(code));
    expect(sent).toHaveLength(1);
    const form = new URLSearchParams(sent[0]!.body);
    expect(form.get("client_id")).toBe("com.example.outpost");
    expect(form.get("grant_type")).toBe("authorization_code");
    expect(form.get("client_secret")?.split(".")).toHaveLength(3);
  });

  it("a code Apple refuses → 401 unauthorized, and no account is made", async () => {
    const sub = `apple-${crypto.randomUUID()}`;
    expectProblem(await appleSignIn({ authorizationCode: "refused-code" }, sub), 401, "unauthorized");
    const n = await env.DB.prepare("SELECT count(*) AS n FROM identities WHERE subject = ?").bind(sub).first();
    expect(n?.n).toBe(0);
  });

  it("authorizationCode with Google → 400 validation_failed", async () => {
    const idToken = await providerIdToken("google", { sub: "g-1", aud: "web-client-id", email_verified: true });
    expectProblem(
      await api("/v1/auth/idtoken", { body: { provider: "google", idToken, authorizationCode: "ok-x" } }),
      400,
      "validation_failed",
    );
  });
});

describe("Sign in with Apple: revocation when the account is deleted", () => {
  it("deleting the account queues the revocation (sealed on the Queue); Apple sees it, retried after a 5xx", async () => {
    const code = `ok-${crypto.randomUUID()}`;
    const signedIn = await appleSignIn({ authorizationCode: code });
    expect(signedIn.status, signedIn.text).toBe(200);
    const { env: recording, queued } = recordingEnv();
    const del = await callRecording(recording, "/v1/me", {
      method: "DELETE",
      token: signedIn.body.session.accessToken,
    });
    expect(del.status).toBe(204);
    expect(await tokenRow(signedIn.body.user.id)).toBeNull();
    const jobs = jobsOf(queued, "auth.apple-revoke");
    expect(jobs).toHaveLength(1);
    expect(JSON.stringify(jobs[0]!.body)).not.toContain(`rt-${code}`);
    expect(await outboxRow(jobs[0]!.body.id)).not.toBeNull();

    // Apple answers 500 once: the job is retried (the outbox row stays), then succeeds (the row goes).
    await fetch(`${env.STANDIN_URL}/apple/fail-revokes`, { method: "POST", body: JSON.stringify({ count: 1 }) });
    expect(await deliver(recording, [jobs[0]!.body])).toEqual({ acked: 0, retried: 1 });
    expect(await outboxRow(jobs[0]!.body.id)).not.toBeNull();
    expect(await deliver(recording, [jobs[0]!.body])).toEqual({ acked: 1, retried: 0 });
    expect(await outboxRow(jobs[0]!.body.id)).toBeNull();
    // A repeated message finds nothing left to revoke: Apple is not called a third time.
    expect(await deliver(recording, [jobs[0]!.body])).toEqual({ acked: 1, retried: 0 });
    const revokes = (await standinRequests("/apple/auth/revoke")).filter((r) => r.body.includes(`rt-${code}`));
    expect(revokes).toHaveLength(2);
    const form = new URLSearchParams(revokes[1]!.body);
    expect(form.get("token")).toBe(`rt-${code}`);
    expect(form.get("token_type_hint")).toBe("refresh_token");
    expect(form.get("client_id")).toBe("com.example.outpost");
  });

  it("a lost Queue message does not lose the revocation: the cron sends it when due, with backoff", async () => {
    const code = `ok-${crypto.randomUUID()}`;
    const signedIn = await appleSignIn({ authorizationCode: code });
    expect(signedIn.status, signedIn.text).toBe(200);
    const sealed = (await tokenRow(signedIn.body.user.id))!.sealed_refresh_token;
    const lost = Object.create(env, {
      JOBS: { value: { send: async () => Promise.reject(new Error("queue unavailable (test)")) } },
    }) as Env;
    const del = await callRecording(lost, "/v1/me", { method: "DELETE", token: signedIn.body.session.accessToken });
    expect(del.status).toBe(204);
    const waiting = (await env.DB.prepare("SELECT * FROM apple_revocations WHERE sealed_refresh_token = ?")
      .bind(sealed)
      .first<{ id: string; next_attempt_at: string }>())!;
    expect(waiting).not.toBeNull();
    const due = new Date(waiting.next_attempt_at);

    // Not due yet: the cron sends nothing for it.
    const early = recordingEnv();
    await appleRevokeBackstop(early.env, primaryDb(env.DB), new Date(due.getTime() - 1000));
    expect(jobsOf(early.queued, "auth.apple-revoke").map((j) => j.body.id)).not.toContain(waiting.id);

    // Due: sent again, and its next attempt moved on (twice the first wait).
    const cron = recordingEnv();
    await appleRevokeBackstop(cron.env, primaryDb(env.DB), due);
    const sent = jobsOf(cron.queued, "auth.apple-revoke").filter((j) => j.body.id === waiting.id);
    expect(sent).toHaveLength(1);
    const after = await outboxRow(waiting.id);
    expect(after?.attempts).toBe(1);
    expect(Date.parse(after!.next_attempt_at) - due.getTime()).toBe(2 * limits.appleRevokeRetrySec * 1000);
    expect(await deliver(cron.env, [sent[0]!.body])).toEqual({ acked: 1, retried: 0 });
    const revokes = (await standinRequests("/apple/auth/revoke")).filter((r) => r.body.includes(`rt-${code}`));
    expect(revokes).toHaveLength(1);
    expect(await outboxRow(waiting.id)).toBeNull();
  });

  it("the cron gives up on a revocation after its last retry (logged), and sends nothing for it", async () => {
    const id = `gone-${crypto.randomUUID()}`;
    await env.DB.prepare(
      "INSERT INTO apple_revocations (id, client_id, sealed_refresh_token, attempts, next_attempt_at, created_at) " +
        "VALUES (?, 'com.example.outpost', 'v1.x', ?, '2000-01-01T00:00:00.000Z', '2000-01-01T00:00:00.000Z')",
    )
      .bind(id, limits.appleRevokeMaxAttempts)
      .run();
    const cron = recordingEnv();
    await appleRevokeBackstop(cron.env, primaryDb(env.DB), new Date());
    expect(jobsOf(cron.queued, "auth.apple-revoke").map((j) => j.body.id)).not.toContain(id);
    expect(await outboxRow(id)).toBeNull();
  });

  it("an account without an Apple token queues nothing", async () => {
    const signedIn = await appleSignIn({});
    const { env: recording, queued } = recordingEnv();
    await callRecording(recording, "/v1/me", { method: "DELETE", token: signedIn.body.session.accessToken });
    expect(jobsOf(queued, "auth.apple-revoke")).toHaveLength(0);
  });
});

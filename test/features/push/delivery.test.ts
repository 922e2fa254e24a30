import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { limits } from "../../../src/config";
import { handlePushDeliver, handlePushSend } from "../../../src/features/push/delivery";
import { clearApnsTokenCache } from "../../../src/features/push/senders/apns";
import { clearFcmTokenCache } from "../../../src/features/push/senders/fcm";
import { api, signup, standinRequests } from "../../helpers/api";
import { apnsToken, fcmToken, jobsOf, listDevices, recordingEnv, registerDevice, requestsFor } from "./helpers";

const message = { title: "T", body: "B", data: {} };

/** A PKCS#8 PEM private key that is NOT the test service account's / APNs key. */
async function foreignKeyPem(alg: "RS256" | "ES256"): Promise<string> {
  const params =
    alg === "RS256"
      ? { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }
      : { name: "ECDSA", namedCurve: "P-256" };
  const pair = (await crypto.subtle.generateKey(params, true, ["sign", "verify"])) as CryptoKeyPair;
  const der = new Uint8Array((await crypto.subtle.exportKey("pkcs8", pair.privateKey)) as ArrayBuffer);
  return `-----BEGIN PRIVATE KEY-----\n${btoa(String.fromCharCode(...der))}\n-----END PRIVATE KEY-----\n`;
}

describe("push delivery", () => {
  it(`splits a fan-out over ${limits.pushDevicesPerJob} devices into push.deliver jobs, each sent once`, async () => {
    const users = [await signup(), await signup(), await signup()];
    const now = new Date().toISOString();
    const rows = users.flatMap((u) =>
      Array.from({ length: 20 }, () => ({ id: crypto.randomUUID(), userId: u.id, token: fcmToken() })),
    );
    await env.DB.batch(
      rows.map((r) =>
        env.DB.prepare(
          "INSERT INTO devices (id, user_id, token, platform, provider, created_at, updated_at) " +
            "VALUES (?, ?, ?, 'android', 'fcm', ?, ?)",
        ).bind(r.id, r.userId, r.token, now, now),
      ),
    );
    const { env: e, queued } = recordingEnv();

    const summary = await handlePushSend(e, { type: "push.send", userIds: users.map((u) => u.id), message });
    expect(summary).toMatchObject({ sent: 0, queued: 60 });
    const jobs = jobsOf(queued, "push.deliver");
    const sizes = Array.from({ length: Math.ceil(60 / limits.pushDevicesPerJob) }, (_, i) =>
      Math.min(limits.pushDevicesPerJob, 60 - i * limits.pushDevicesPerJob),
    );
    expect(jobs.map((j) => j.body.targets.length)).toEqual(sizes);
    expect(new Set(jobs.flatMap((j) => j.body.targets.map((t) => t.deviceId))).size).toBe(60);
    expect(jobs.every((j) => j.body.attempt === 1 && j.delaySeconds === undefined)).toBe(true);

    let sent = 0;
    for (const j of jobs) sent += (await handlePushDeliver(e, j.body)).sent;
    expect(sent).toBe(60);
    // Each of the 60 devices got exactly one request.
    const bodies = (await standinRequests("/fcm/v1/")).map((r) => r.body);
    expect(rows.map((r) => bodies.filter((b) => b.includes(r.token)).length)).toEqual(rows.map(() => 1));
  });

  it("a retry never reaches a device that has since moved to another account", async () => {
    const alice = await signup();
    const bob = await signup();
    const token = fcmToken();
    const d = await registerDevice(alice, token, "fcm");
    expect(
      (await api("/v1/devices", { token: bob.accessToken, body: { token, platform: "android", provider: "fcm" } }))
        .status,
    ).toBe(200);
    const { env: e } = recordingEnv();
    const summary = await handlePushDeliver(e, {
      type: "push.deliver",
      targets: [{ deviceId: d.id, userId: alice.id }],
      message,
      attempt: 2,
    });
    expect(summary).toMatchObject({ sent: 0, failed: 0, retried: 0 });
    expect(await requestsFor("/fcm/v1/", token)).toEqual([]);
  });

  it("a provider without credentials sends nothing and keeps the devices", async () => {
    const user = await signup();
    const token = apnsToken();
    await registerDevice(user, token, "apns");
    const { env: e, queued } = recordingEnv({ APNS_KEY_P8: "" });
    expect(await handlePushSend(e, { type: "push.send", userIds: [user.id], message })).toMatchObject({
      sent: 0,
      failed: 1,
      retried: 0,
      dead: 0,
    });
    expect(queued).toEqual([]);
    expect(await requestsFor("/apns/", token)).toEqual([]);
    expect(await listDevices(user)).toHaveLength(1);
  });

  it("FCM refuses a JWT signed with another key: nothing is sent, nothing retried, devices kept", async () => {
    clearFcmTokenCache();
    const sa = JSON.parse((env as Env).FCM_SERVICE_ACCOUNT!) as Record<string, string>;
    const user = await signup();
    const token = fcmToken();
    await registerDevice(user, token, "fcm");
    const { env: e, queued } = recordingEnv({
      FCM_SERVICE_ACCOUNT: JSON.stringify({ ...sa, private_key: await foreignKeyPem("RS256") }),
    });
    expect(await handlePushSend(e, { type: "push.send", userIds: [user.id], message })).toMatchObject({
      sent: 0,
      failed: 1,
      retried: 0,
    });
    expect(queued).toEqual([]);
    expect(await requestsFor("/fcm/v1/", token)).toEqual([]);
    expect(await listDevices(user)).toHaveLength(1);
    clearFcmTokenCache();
  });

  it("APNs refuses a provider token signed with another key (403): not retried, device kept", async () => {
    clearApnsTokenCache();
    const user = await signup();
    const token = apnsToken();
    await registerDevice(user, token, "apns");
    const { env: e, queued } = recordingEnv({ APNS_KEY_P8: await foreignKeyPem("ES256") });
    expect(await handlePushSend(e, { type: "push.send", userIds: [user.id], message })).toMatchObject({
      sent: 0,
      failed: 1,
      retried: 0,
    });
    expect(queued).toEqual([]);
    expect(await requestsFor("/apns/", token)).toHaveLength(1);
    expect(await listDevices(user)).toHaveLength(1);
    clearApnsTokenCache();
  });

  it("when the retry cannot be queued, a device that already got the message is not pushed again", async () => {
    const user = await signup();
    const ok = fcmToken();
    const flaky = fcmToken("flaky");
    await registerDevice(user, ok, "fcm");
    await registerDevice(user, flaky, "fcm");
    const { env: e } = recordingEnv();
    (e.JOBS as unknown as { sendBatch: () => Promise<void> }).sendBatch = async () => {
      throw new Error("queue unavailable");
    };
    // Resolving acks the job: a throw would make the consumer run it again and push `ok` twice.
    expect(await handlePushSend(e, { type: "push.send", userIds: [user.id], message })).toMatchObject({
      sent: 1,
      retried: 0,
      dropped: 1,
    });
    expect(await requestsFor("/fcm/v1/", ok)).toHaveLength(1);
  });

  it("when nothing was delivered and the retry cannot be queued, the job fails so the queue retries it", async () => {
    const user = await signup();
    const flaky = fcmToken("flaky");
    await registerDevice(user, flaky, "fcm");
    const { env: e } = recordingEnv();
    (e.JOBS as unknown as { sendBatch: () => Promise<void> }).sendBatch = async () => {
      throw new Error("queue unavailable");
    };
    await expect(handlePushSend(e, { type: "push.send", userIds: [user.id], message })).rejects.toThrow(
      "queue unavailable",
    );
  });

  // A rerun would queue the first slices twice.
  it("a large fan-out whose later slices cannot be queued does not fail the job", async () => {
    const users = await Promise.all(Array.from({ length: 21 }, () => signup()));
    const now = new Date().toISOString();
    const rows = users.flatMap((u) =>
      Array.from({ length: 20 }, () => ({ id: crypto.randomUUID(), userId: u.id, token: fcmToken() })),
    );
    await env.DB.batch(
      rows.map((r) =>
        env.DB.prepare(
          "INSERT INTO devices (id, user_id, token, platform, provider, created_at, updated_at) " +
            "VALUES (?, ?, ?, 'android', 'fcm', ?, ?)",
        ).bind(r.id, r.userId, r.token, now, now),
      ),
    );
    const { env: e, queued } = recordingEnv();
    const jobs = e.JOBS as unknown as { sendBatch: (msgs: Iterable<unknown>) => Promise<void> };
    const record = jobs.sendBatch.bind(jobs);
    let calls = 0;
    jobs.sendBatch = async (msgs) => {
      if (++calls > 1) throw new Error("queue unavailable");
      await record(msgs);
    };
    const summary = await handlePushSend(e, { type: "push.send", userIds: users.map((u) => u.id), message });
    const slices = jobsOf(queued, "push.deliver");
    expect(slices.length).toBeGreaterThan(0);
    const inSlices = slices.reduce((n, j) => n + j.body.targets.length, 0);
    expect(summary).toMatchObject({ queued: inSlices, dropped: rows.length - inSlices });
  });

  it("a large fan-out that cannot be queued at all fails the job, so the queue retries it", async () => {
    const users = await Promise.all(Array.from({ length: 2 }, () => signup()));
    const now = new Date().toISOString();
    const rows = users.flatMap((u) =>
      Array.from({ length: 20 }, () => ({ id: crypto.randomUUID(), userId: u.id, token: fcmToken() })),
    );
    await env.DB.batch(
      rows.map((r) =>
        env.DB.prepare(
          "INSERT INTO devices (id, user_id, token, platform, provider, created_at, updated_at) " +
            "VALUES (?, ?, ?, 'android', 'fcm', ?, ?)",
        ).bind(r.id, r.userId, r.token, now, now),
      ),
    );
    const { env: e } = recordingEnv();
    (e.JOBS as unknown as { sendBatch: () => Promise<void> }).sendBatch = async () => {
      throw new Error("queue unavailable");
    };
    await expect(handlePushSend(e, { type: "push.send", userIds: users.map((u) => u.id), message })).rejects.toThrow(
      "queue unavailable",
    );
  });
});

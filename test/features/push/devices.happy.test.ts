import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { limits } from "../../../src/config";
import { api, documentedOperations, serviceKey, signup } from "../../helpers/api";
import {
  apnsToken,
  callRecording,
  type DeviceJson,
  expoToken,
  fcmToken,
  jobsOf,
  listDevices,
  recordingEnv,
  registerDevice,
  requestsFor,
  runJobs,
} from "./helpers";

/**
 * Registrations in the same millisecond tie on `updatedAt`: tests that assert order register at
 * injected times one second apart (the app reads the same mocked clock).
 */
async function registerInOrder(user: Parameters<typeof registerDevice>[0], n: number): Promise<DeviceJson[]> {
  const made: DeviceJson[] = [];
  const start = Date.now();
  try {
    for (let i = 0; i < n; i++) {
      vi.setSystemTime(start + i * 1000);
      made.push(await registerDevice(user, fcmToken(), "fcm"));
    }
  } finally {
    vi.useRealTimers();
  }
  // The app stamped each registration with the injected time.
  expect(made.map((d) => Date.parse(d.updatedAt) - start)).toEqual(made.map((_, i) => i * 1000));
  return made;
}

const deviceCount = async (userId: string) =>
  (await env.DB.prepare("SELECT COUNT(*) AS n FROM devices WHERE user_id = ?").bind(userId).first<{ n: number }>())!.n;

describe("devices: happy paths", () => {
  it("registers a device (201) and lists it", async () => {
    const user = await signup();
    const token = fcmToken();
    const res = await api<DeviceJson>("/v1/devices", {
      token: user.accessToken,
      body: { token, platform: "android", provider: "fcm" },
    });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.any(String),
      token,
      platform: "android",
      provider: "fcm",
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    const list = await api("/v1/devices", { token: user.accessToken });
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ items: [res.body], nextCursor: null });
  });

  it("accepts each provider's token shape on its platforms", async () => {
    const user = await signup();
    await registerDevice(user, apnsToken(), "apns", "ios");
    await registerDevice(user, expoToken(), "expo", "android");
    await registerDevice(user, `ExpoPushToken[${crypto.randomUUID()}]`, "expo", "ios");
    await registerDevice(user, fcmToken(), "fcm", "web");
    await registerDevice(user, fcmToken(), "fcm", "ios");
    expect(await listDevices(user)).toHaveLength(5);
  });

  it("the same token registered again by its owner answers 200 with the same device, updated", async () => {
    const user = await signup();
    const token = fcmToken();
    const first = await registerDevice(user, token, "fcm", "android");
    const again = await api<DeviceJson>("/v1/devices", {
      token: user.accessToken,
      body: { token, platform: "web", provider: "fcm" },
    });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id: first.id, token, platform: "web", createdAt: first.createdAt });
    expect(await listDevices(user)).toHaveLength(1);
  });

  it("a token registered by another account moves to it (a phone changing hands), not duplicated", async () => {
    const alice = await signup();
    const bob = await signup();
    const token = apnsToken();
    const mine = await registerDevice(alice, token, "apns");
    const res = await api<DeviceJson>("/v1/devices", {
      token: bob.accessToken,
      body: { token, platform: "ios", provider: "apns" },
    });
    expect(res.status).toBe(200);
    expect(res.body.token).toBe(token);
    expect(res.body.id).toBe(mine.id);
    expect(await listDevices(alice)).toEqual([]);
    expect((await listDevices(bob)).map((d) => d.token)).toEqual([token]);
    const rows = await env.DB.prepare("SELECT user_id FROM devices WHERE token = ?")
      .bind(token)
      .all<{ user_id: string }>();
    expect(rows.results).toEqual([{ user_id: bob.id }]);
  });

  it("deletes a device (204); it is gone from the list", async () => {
    const user = await signup();
    const keep = await registerDevice(user, fcmToken(), "fcm");
    const drop = await registerDevice(user, fcmToken(), "fcm");
    const res = await api(`/v1/devices/${drop.id}`, { method: "DELETE", token: user.accessToken });
    expect(res.status).toBe(204);
    expect(res.text).toBe("");
    expect((await listDevices(user)).map((d) => d.id)).toEqual([keep.id]);
  });

  it("lists most recently registered first, in pages", async () => {
    const user = await signup();
    const made = await registerInOrder(user, 5);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { items: DeviceJson[]; nextCursor: string | null } } = await api(
        `/v1/devices?limit=2${cursor ? `&cursor=${cursor}` : ""}`,
        { token: user.accessToken },
      );
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((d) => d.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(made.map((d) => d.id).reverse());
  });

  it(`keeps at most ${limits.pushDevicesPerUser} devices per user, dropping the oldest registered`, async () => {
    const user = await signup();
    const made = await registerInOrder(user, limits.pushDevicesPerUser + 2);
    const ids = (await listDevices(user)).map((d) => d.id);
    expect(ids).toHaveLength(limits.pushDevicesPerUser);
    expect(ids).not.toContain(made[0]!.id);
    expect(ids).not.toContain(made[1]!.id);
    expect(ids[0]).toBe(made.at(-1)!.id);
  });

  it("deleting the account deletes its devices", async () => {
    const user = await signup();
    await registerDevice(user, fcmToken(), "fcm");
    await registerDevice(user, apnsToken(), "apns");
    expect(await deviceCount(user.id)).toBe(2);
    const res = await api("/v1/me", { method: "DELETE", token: user.accessToken });
    expect(res.status).toBe(204);
    expect(await deviceCount(user.id)).toBe(0);
  });

  it("POST /v1/admin/push queues a push (202) that reaches every device of the users", async () => {
    const a = await signup();
    const b = await signup();
    const ta = fcmToken();
    const tb = expoToken();
    await registerDevice(a, ta, "fcm");
    await registerDevice(b, tb, "expo");
    const { env: recording, queued } = recordingEnv();
    const res = await callRecording(recording, "/v1/admin/push", {
      token: serviceKey(),
      body: {
        userIds: [a.id, b.id, a.id, "00000000-0000-7000-8000-000000000000"],
        title: " Maintenance ",
        body: "Back in 5 minutes",
        data: { screen: "status" },
      },
    });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ status: "queued", userCount: 3 });
    // Delivered by the Worker's queue handler, as the Queue would run it.
    await runJobs(recording, jobsOf(queued, "push.send"));
    const [fcm, ...moreFcm] = await requestsFor("/fcm/v1/", ta);
    expect(moreFcm).toEqual([]);
    expect(JSON.parse(fcm!.body).message).toMatchObject({
      token: ta,
      notification: { title: "Maintenance", body: "Back in 5 minutes" },
      data: { screen: "status" },
    });
    const [expo, ...moreExpo] = await requestsFor("/expo/push/send", tb);
    expect(moreExpo).toEqual([]);
    expect(JSON.parse(expo!.body)).toEqual([
      {
        to: tb,
        title: "Maintenance",
        body: "Back in 5 minutes",
        data: { screen: "status" },
        sound: "default",
        priority: "high",
      },
    ]);
  });

  it("a retried admin push with the same Idempotency-Key answers the same and pushes once", async () => {
    const user = await signup();
    const token = fcmToken();
    await registerDevice(user, token, "fcm");
    const { env: recording, queued } = recordingEnv();
    const call = () =>
      callRecording(recording, "/v1/admin/push", {
        token: serviceKey(),
        headers: { "idempotency-key": `push-${token}` },
        body: { userIds: [user.id], title: "Once", body: "Only once" },
      });
    const first = await call();
    const second = await call();
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body).toEqual(first.body);
    const jobs = jobsOf(queued, "push.send");
    expect(jobs).toHaveLength(1);
    await runJobs(recording, jobs);
    expect(await requestsFor("/fcm/v1/", token)).toHaveLength(1);
  });

  // Including the device body's required fields and the push's 202.
  it("the device and admin push routes are documented exactly", async () => {
    expect(await documentedOperations("/v1/devices", "/v1/admin/push")).toEqual([
      "DELETE /v1/devices/{id}",
      "GET /v1/devices",
      "POST /v1/admin/push",
      "POST /v1/devices",
    ]);
    const { body } = await api("/v1/openapi.json");
    expect(body.paths["/v1/devices"].post.requestBody.content["application/json"].schema.required).toEqual(
      expect.arrayContaining(["token", "platform", "provider"]),
    );
    expect(body.paths["/v1/admin/push"].post.responses["202"]).toBeDefined();
  });
});

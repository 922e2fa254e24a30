/**
 * The delivery contract every push provider must keep, run once per provider against its
 * stand-in: a healthy device gets the push once, a transient failure is retried with backoff
 * and then delivered, a dead token's device is deleted, the last attempt gives up and keeps the
 * device. Provider-specific wire details live in fcm.test.ts, apns.test.ts and expo.test.ts.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { limits } from "../../../src/config";
import { handlePushDeliver, handlePushSend, type PushDeliverJob } from "../../../src/features/push/delivery";
import { clearApnsTokenCache } from "../../../src/features/push/senders/apns";
import { clearFcmTokenCache } from "../../../src/features/push/senders/fcm";
import { signup } from "../../helpers/api";
import {
  apnsToken,
  expoToken,
  fcmToken,
  jobsOf,
  listDevices,
  recordingEnv,
  registerDevice,
  requestsFor,
} from "./helpers";

const message = { title: "Hello", body: "One contract, three providers", data: { id: "42" } };

const providers = [
  { name: "fcm", token: (k: "ok" | "dead" | "flaky") => fcmToken(k), path: "/fcm/v1/", batched: false },
  { name: "apns", token: (k: "ok" | "dead" | "flaky") => apnsToken(k), path: "/apns/3/device/", batched: false },
  // Expo takes one request for all devices: a 503 fails (and retries) every message in it.
  { name: "expo", token: (k: "ok" | "dead" | "flaky") => expoToken(k), path: "/expo/push/send", batched: true },
] as const;

describe.each(providers)("push provider contract: $name", ({ name, token, path, batched }) => {
  beforeEach(() => {
    clearFcmTokenCache();
    clearApnsTokenCache();
  });

  it("delivers to each device exactly once", async () => {
    const user = await signup();
    const [a, b] = [token("ok"), token("ok")];
    await registerDevice(user, a, name);
    await registerDevice(user, b, name);
    const { env: e, queued } = recordingEnv();
    expect(await handlePushSend(e, { type: "push.send", userIds: [user.id], message })).toMatchObject({
      sent: 2,
      retried: 0,
      dead: 0,
    });
    expect(jobsOf(queued, "push.deliver")).toEqual([]);
    expect(await requestsFor(path, a)).toHaveLength(1);
    expect(await requestsFor(path, b)).toHaveLength(1);
  });

  it("retries a transient failure once with backoff, then delivers it", async () => {
    const user = await signup();
    const ok = token("ok");
    const flaky = token("flaky");
    const okDevice = await registerDevice(user, ok, name);
    const flakyDevice = await registerDevice(user, flaky, name);
    const { env: e, queued } = recordingEnv();

    expect(await handlePushSend(e, { type: "push.send", userIds: [user.id], message })).toMatchObject({
      sent: batched ? 0 : 1,
      retried: batched ? 2 : 1,
    });
    const retries = jobsOf(queued, "push.deliver");
    expect(retries).toHaveLength(1);
    expect(retries[0]!.delaySeconds).toBe(limits.pushRetryBaseSec);
    expect(retries[0]!.body.attempt).toBe(2);
    const retried = batched ? [okDevice.id, flakyDevice.id] : [flakyDevice.id];
    expect(retries[0]!.body.targets.map((t) => t.deviceId).sort()).toEqual(retried.sort());

    expect(await handlePushDeliver(e, retries[0]!.body)).toMatchObject({ sent: retried.length, retried: 0 });
    expect(jobsOf(queued, "push.deliver")).toHaveLength(1);
    expect(await requestsFor(path, flaky)).toHaveLength(2);
    // A device that was delivered on the first try is not pushed again.
    expect(await requestsFor(path, ok)).toHaveLength(batched ? 2 : 1);
    expect(await listDevices(user)).toHaveLength(2);
  });

  it("deletes a device the provider reports dead, keeps the others, queues nothing", async () => {
    const user = await signup();
    const live = await registerDevice(user, token("ok"), name);
    const dead = token("dead");
    await registerDevice(user, dead, name);
    const { env: e, queued } = recordingEnv();
    expect(await handlePushSend(e, { type: "push.send", userIds: [user.id], message })).toMatchObject({
      sent: 1,
      dead: 1,
      retried: 0,
    });
    expect(jobsOf(queued, "push.deliver")).toEqual([]);
    expect(await requestsFor(path, dead)).toHaveLength(1);
    expect((await listDevices(user)).map((d) => d.id)).toEqual([live.id]);
  });

  it("gives up after the last attempt without queueing more, and keeps the device", async () => {
    const user = await signup();
    const device = await registerDevice(user, token("flaky"), name);
    const { env: e, queued } = recordingEnv();
    const job: PushDeliverJob = {
      type: "push.deliver",
      targets: [{ deviceId: device.id, userId: user.id }],
      message,
      attempt: limits.pushMaxAttempts,
    };
    expect(await handlePushDeliver(e, job)).toMatchObject({ sent: 0, retried: 0, dropped: 1 });
    expect(queued).toEqual([]);
    expect((await listDevices(user)).map((d) => d.id)).toEqual([device.id]);
  });
});

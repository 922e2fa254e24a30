import { describe, expect, it } from "vitest";
import { limits } from "../../../src/config";
import { handlePushDeliver, handlePushSend, type PushDeliverJob } from "../../../src/features/push/delivery";
import { signup } from "../../helpers/api";
import { expoToken, listDevices, recordingEnv, registerDevice, requestsFor } from "./helpers";

const message = { title: "Build finished", body: "v1.2 is live", data: { url: "myapp://builds/12" } };
const expected = (to: string) => ({ to, title: "Build finished", body: "v1.2 is live", data: { url: "myapp://builds/12" }, sound: "default", priority: "high" });

describe("push: Expo push service", () => {
  it("sends one batched request with the access token and one message per device", async () => {
    const user = await signup();
    const a = expoToken();
    const b = expoToken();
    await registerDevice(user, a, "expo", "ios");
    await registerDevice(user, b, "expo", "android");
    const { env: e, queued } = recordingEnv();

    expect(await handlePushSend(e, { type: "push.send", userIds: [user.id], message })).toMatchObject({ sent: 2, dead: 0, retried: 0 });
    expect(queued).toEqual([]);

    const reqs = await requestsFor("/expo/push/send", a);
    expect(reqs).toHaveLength(1);
    const r = reqs[0]!;
    expect(r.method).toBe("POST");
    expect(r.headers.authorization).toBe("Bearer test-only-expo-access-token");
    expect(r.headers["content-type"]).toContain("application/json");
    expect(r.headers.accept).toBe("application/json");
    const sent = JSON.parse(r.body) as { to: string }[];
    expect(sent).toHaveLength(2);
    expect([...sent].sort((x, y) => x.to.localeCompare(y.to))).toEqual([a, b].sort().map(expected));
  });

  it("retries every message of a request that failed with 503 (none was delivered), and only those", async () => {
    const user = await signup();
    const other = await signup();
    const ok = expoToken();
    const flaky = expoToken("flaky");
    await registerDevice(user, ok, "expo");
    const flakyDevice = await registerDevice(user, flaky, "expo");
    const okDevice = (await listDevices(user)).find((d) => d.token === ok)!;
    const { env: e, queued } = recordingEnv();

    expect(await handlePushSend(e, { type: "push.send", userIds: [user.id, other.id], message })).toMatchObject({ sent: 0, retried: 2 });
    expect(queued).toHaveLength(1);
    const job = queued[0]!.body as PushDeliverJob;
    expect(queued[0]!.delaySeconds).toBe(limits.pushRetryBaseSec);
    expect(job.attempt).toBe(2);
    expect(job.targets.map((t) => t.deviceId).sort()).toEqual([okDevice.id, flakyDevice.id].sort());

    expect(await handlePushDeliver(e, job)).toMatchObject({ sent: 2, retried: 0 });
    expect(await requestsFor("/expo/push/send", flaky)).toHaveLength(2);
  });

  it("retries only the ticket that says MessageRateExceeded", async () => {
    const user = await signup();
    const ok = expoToken();
    const throttled = expoToken("throttled");
    await registerDevice(user, ok, "expo");
    const throttledDevice = await registerDevice(user, throttled, "expo");
    const { env: e, queued } = recordingEnv();

    expect(await handlePushSend(e, { type: "push.send", userIds: [user.id], message })).toMatchObject({ sent: 1, retried: 1 });
    expect((queued[0]!.body as PushDeliverJob).targets).toEqual([{ deviceId: throttledDevice.id, userId: user.id }]);
    expect(await handlePushDeliver(e, queued[0]!.body as PushDeliverJob)).toMatchObject({ sent: 1 });
    expect(await requestsFor("/expo/push/send", ok)).toHaveLength(1);
  });

  it("deletes a device whose ticket says DeviceNotRegistered", async () => {
    const user = await signup();
    const live = await registerDevice(user, expoToken(), "expo");
    await registerDevice(user, expoToken("dead"), "expo");
    const { env: e, queued } = recordingEnv();
    expect(await handlePushSend(e, { type: "push.send", userIds: [user.id], message })).toMatchObject({ sent: 1, dead: 1 });
    expect(queued).toEqual([]);
    expect((await listDevices(user)).map((d) => d.id)).toEqual([live.id]);
  });
});

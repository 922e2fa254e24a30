import { describe, expect, it } from "vitest";
import { limits } from "../../../src/config";
import { handlePushDeliver, handlePushReceipts, handlePushSend } from "../../../src/features/push/delivery";
import { signup, standinRequests } from "../../helpers/api";
import { expoToken, jobsOf, listDevices, recordingEnv, registerDevice, requestsFor } from "./helpers";

const message = { title: "Build finished", body: "v1.2 is live", data: { url: "myapp://builds/12" } };
const expected = (to: string) => ({
  to,
  title: "Build finished",
  body: "v1.2 is live",
  data: { url: "myapp://builds/12" },
  sound: "default",
  priority: "high",
});

describe("push: Expo push service", () => {
  // The request carries the access token.
  it("sends one batched request, one message per device, then schedules the receipt check", async () => {
    const user = await signup();
    const a = expoToken();
    const b = expoToken();
    const da = await registerDevice(user, a, "expo", "ios");
    const db = await registerDevice(user, b, "expo", "android");
    const { env: e, queued } = recordingEnv();

    expect(await handlePushSend(e, { type: "push.send", userIds: [user.id], message })).toMatchObject({
      sent: 2,
      dead: 0,
      retried: 0,
    });

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

    // Tickets only say Expo took the messages; their receipts are read later.
    expect(jobsOf(queued, "push.deliver")).toEqual([]);
    const receipts = jobsOf(queued, "push.receipts");
    expect(receipts).toHaveLength(1);
    expect(receipts[0]!.delaySeconds).toBe(limits.pushExpoReceiptDelaySec);
    expect(receipts[0]!.body.receipts.map((x) => x.deviceId).sort()).toEqual([da.id, db.id].sort());
    expect(receipts[0]!.body.receipts.every((x) => /^ticket-\d+$/.test(x.ticket))).toBe(true);
  });

  it("retries only the ticket that says MessageRateExceeded", async () => {
    const user = await signup();
    const ok = expoToken();
    const throttled = expoToken("throttled");
    await registerDevice(user, ok, "expo");
    const throttledDevice = await registerDevice(user, throttled, "expo");
    const { env: e, queued } = recordingEnv();

    expect(await handlePushSend(e, { type: "push.send", userIds: [user.id], message })).toMatchObject({
      sent: 1,
      retried: 1,
    });
    const [retry] = jobsOf(queued, "push.deliver");
    expect(retry!.body.targets).toEqual([{ deviceId: throttledDevice.id, userId: user.id }]);
    expect(await handlePushDeliver(e, retry!.body)).toMatchObject({ sent: 1 });
    expect(await requestsFor("/expo/push/send", ok)).toHaveLength(1);
    expect(await requestsFor("/expo/push/send", throttled)).toHaveLength(2);
  });

  it("deletes a device whose receipt says DeviceNotRegistered, keeps the others", async () => {
    const user = await signup();
    const live = await registerDevice(user, expoToken(), "expo");
    const gone = expoToken("gone");
    await registerDevice(user, gone, "expo");
    const { env: e, queued } = recordingEnv();
    expect(await handlePushSend(e, { type: "push.send", userIds: [user.id], message })).toMatchObject({
      sent: 2,
      dead: 0,
    });
    expect(await listDevices(user)).toHaveLength(2);

    const [check] = jobsOf(queued, "push.receipts");
    const before = (await standinRequests("/expo/push/getReceipts")).length;
    expect(await handlePushReceipts(e, check!.body)).toEqual({ dead: 1 });
    const asked = (await standinRequests("/expo/push/getReceipts")).slice(before);
    expect(asked).toHaveLength(1);
    expect(asked[0]!.headers.authorization).toBe("Bearer test-only-expo-access-token");
    expect(JSON.parse(asked[0]!.body)).toEqual({ ids: check!.body.receipts.map((r) => r.ticket) });
    expect((await listDevices(user)).map((d) => d.id)).toEqual([live.id]);
  });
});

import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { handlePushSend } from "../../../src/features/push/delivery";
import { clearFcmTokenCache } from "../../../src/features/push/senders/fcm";
import { signup, standinRequests } from "../../helpers/api";
import { decodeJwt, fcmToken, listDevices, recordingEnv, registerDevice, requestsFor } from "./helpers";

const message = { title: "Hello", body: "From the admin", data: { kind: "promo", id: "42" } };
const SEND_PATH = "/fcm/v1/projects/outpost-test/messages:send";

describe("push: FCM HTTP v1", () => {
  beforeEach(() => clearFcmTokenCache());

  it("exchanges a signed service-account JWT for an access token, then sends exactly the v1 message", async () => {
    const user = await signup();
    const token = fcmToken();
    await registerDevice(user, token, "fcm");
    const tokenCallsBefore = (await standinRequests("/fcm/token")).length;
    const { env: e, queued } = recordingEnv();

    const summary = await handlePushSend(e, { type: "push.send", userIds: [user.id], message });
    expect(summary).toMatchObject({ sent: 1, dead: 0, retried: 0, failed: 0 });
    expect(queued).toEqual([]);

    // The OAuth exchange: JWT-bearer grant with an RS256 assertion for the FCM scope.
    const exchanges = (await standinRequests("/fcm/token")).slice(tokenCallsBefore);
    expect(exchanges).toHaveLength(1);
    const form = new URLSearchParams(exchanges[0]!.body);
    expect(exchanges[0]!.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(form.get("grant_type")).toBe("urn:ietf:params:oauth:grant-type:jwt-bearer");
    const { header, claims } = decodeJwt(form.get("assertion")!);
    expect(header).toEqual({ alg: "RS256", typ: "JWT", kid: "test-only-fcm-key-1" });
    expect(claims).toMatchObject({
      iss: "outpost-push@outpost-test.iam.gserviceaccount.com",
      scope: "https://www.googleapis.com/auth/firebase.messaging",
      aud: env.FCM_TOKEN_URL,
    });
    expect((claims.exp as number) - (claims.iat as number)).toBe(3600);

    // The send: the issued access token, the project from the service account, the exact message.
    const sends = await requestsFor(SEND_PATH, token);
    expect(sends).toHaveLength(1);
    expect(sends[0]!.method).toBe("POST");
    expect(sends[0]!.path).toBe(SEND_PATH);
    expect(sends[0]!.headers.authorization).toMatch(/^Bearer ya29\.test-\d+$/);
    expect(JSON.parse(sends[0]!.body)).toEqual({
      message: {
        token,
        notification: { title: "Hello", body: "From the admin" },
        data: { kind: "promo", id: "42" },
        android: { priority: "HIGH" },
        apns: { headers: { "apns-priority": "10" }, payload: { aps: { sound: "default" } } },
      },
    });
  });

  it("reuses the access token until it expires, and exchanges again when FCM answers 401", async () => {
    const user = await signup();
    const token = fcmToken();
    await registerDevice(user, token, "fcm");
    const { env: e } = recordingEnv();
    const exchanges = async () => (await standinRequests("/fcm/token")).length;

    await handlePushSend(e, { type: "push.send", userIds: [user.id], message });
    const afterFirst = await exchanges();
    await handlePushSend(e, { type: "push.send", userIds: [user.id], message });
    expect(await exchanges()).toBe(afterFirst);

    // The provider revokes every access token: the next send gets 401, exchanges once, succeeds.
    await fetch(`${env.STANDIN_URL}/fcm/_test/revoke`, { method: "POST" });
    const summary = await handlePushSend(e, { type: "push.send", userIds: [user.id], message });
    expect(summary.sent).toBe(1);
    expect(await exchanges()).toBe(afterFirst + 1);
    const sends = await requestsFor(SEND_PATH, token);
    expect(sends.map((s) => s.headers.authorization)).toHaveLength(4);
    expect(sends[2]!.headers.authorization).toBe(sends[0]!.headers.authorization);
    expect(sends[3]!.headers.authorization).not.toBe(sends[0]!.headers.authorization);
  });

  it("honours Retry-After on 429 when it is longer than the backoff", async () => {
    const user = await signup();
    await registerDevice(user, fcmToken("throttled"), "fcm");
    const { env: e, queued } = recordingEnv();
    const summary = await handlePushSend(e, { type: "push.send", userIds: [user.id], message });
    expect(summary.retried).toBe(1);
    expect(queued[0]!.delaySeconds).toBe(30);
  });

  it("deletes a device whose token FCM calls invalid, but not on other bad requests", async () => {
    const user = await signup();
    const live = await registerDevice(user, fcmToken(), "fcm");
    await registerDevice(user, fcmToken("invalid"), "fcm");
    const { env: e, queued } = recordingEnv();
    expect(await handlePushSend(e, { type: "push.send", userIds: [user.id], message })).toMatchObject({
      sent: 1,
      dead: 1,
    });
    expect(queued).toEqual([]);
    expect((await listDevices(user)).map((d) => d.id)).toEqual([live.id]);

    // A payload FCM rejects (here: a non-string data value) is the sender's fault: the device stays.
    const bad = { ...message, data: { n: 1 } as unknown as Record<string, string> };
    expect(await handlePushSend(e, { type: "push.send", userIds: [user.id], message: bad })).toMatchObject({
      sent: 0,
      failed: 1,
      dead: 0,
    });
    expect((await listDevices(user)).map((d) => d.id)).toEqual([live.id]);
  });
});

import { describe, expect, it } from "vitest";
import { handlePushSend } from "../../../src/features/push/delivery";
import { clearApnsTokenCache } from "../../../src/features/push/senders/apns";
import { signup } from "../../helpers/api";
import { apnsToken, decodeJwt, recordingEnv, registerDevice, requestsFor } from "./helpers";

const message = { title: "Ada", body: "Are you there?", data: { roomId: "r1", seq: "7" }, threadId: "r1" };

describe("push: APNs (token auth)", () => {
  it("sends exactly one request per device with a fresh ES256 provider token, topic and push type", async () => {
    clearApnsTokenCache();
    const user = await signup();
    const token = apnsToken();
    await registerDevice(user, token, "apns");
    const { env: e, queued } = recordingEnv();
    const before = Math.floor(Date.now() / 1000);

    const summary = await handlePushSend(e, { type: "push.send", userIds: [user.id], message });
    expect(summary).toMatchObject({ sent: 1, dead: 0, retried: 0, failed: 0 });
    expect(queued).toEqual([]);

    const reqs = await requestsFor("/apns/3/device/", token);
    expect(reqs).toHaveLength(1);
    const r = reqs[0]!;
    expect(r.method).toBe("POST");
    expect(r.path).toBe(`/apns/3/device/${token}`);
    expect(r.headers["apns-topic"]).toBe("com.example.outpost");
    expect(r.headers["apns-push-type"]).toBe("alert");
    expect(r.headers["apns-priority"]).toBe("10");
    const jwt = /^bearer (.+)$/.exec(r.headers.authorization ?? "")?.[1];
    expect(jwt).toBeDefined();
    const { header, claims } = decodeJwt(jwt!);
    expect(header).toEqual({ alg: "ES256", kid: "TESTKEY001" });
    expect(claims.iss).toBe("TESTTEAM01");
    expect(claims.iat).toBeGreaterThanOrEqual(before);
    // The signature itself was verified by the stand-in with the public key: a bad one gets 403.
    expect(JSON.parse(r.body)).toEqual({
      aps: { alert: { title: "Ada", body: "Are you there?" }, sound: "default", "thread-id": "r1" },
      roomId: "r1",
      seq: "7",
    });
  });

  it("reuses the provider token across sends instead of signing one per push", async () => {
    const user = await signup();
    const a = apnsToken();
    const b = apnsToken();
    await registerDevice(user, a, "apns");
    await registerDevice(user, b, "apns");
    const { env: e } = recordingEnv();
    await handlePushSend(e, { type: "push.send", userIds: [user.id], message });
    await handlePushSend(e, { type: "push.send", userIds: [user.id], message });
    const auth = [...(await requestsFor("/apns/3/device/", a)), ...(await requestsFor("/apns/3/device/", b))].map(
      (r) => r.headers.authorization,
    );
    expect(auth).toHaveLength(4);
    expect(new Set(auth).size).toBe(1);
  });

  // Apple refuses tokens renewed more often than every 20 minutes.
  it("signs one provider token for concurrent first sends", async () => {
    clearApnsTokenCache();
    const user = await signup();
    const tokens = [apnsToken(), apnsToken(), apnsToken(), apnsToken()];
    for (const t of tokens) await registerDevice(user, t, "apns");
    const { env: e } = recordingEnv();
    expect(await handlePushSend(e, { type: "push.send", userIds: [user.id], message })).toMatchObject({ sent: 4 });
    const auth = (await Promise.all(tokens.map((t) => requestsFor("/apns/3/device/", t))))
      .flat()
      .map((r) => r.headers.authorization);
    expect(auth).toHaveLength(4);
    expect(new Set(auth).size).toBe(1);
  });
});

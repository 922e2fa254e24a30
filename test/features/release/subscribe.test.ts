/** GET /v1/config/subscribe: the config on connect, then every change within seconds, computed per caller. */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, expectProblem, freshIp, serviceKey, signup, type TestUser } from "../../helpers/api";
import { expectStrangersRefused } from "../../helpers/refusals";
import { track } from "../../helpers/sockets";

interface ConfigFrame {
  type: string;
  values: Record<string, unknown>;
  version: number;
}

/** A config socket's frames, awaited one at a time (bounded: a change must arrive within seconds). */
class ConfigSocket {
  private readonly frames: ConfigFrame[] = [];
  private wake: (() => void) | null = null;
  readonly closed: Promise<number>;

  constructor(readonly ws: WebSocket) {
    track(ws);
    ws.accept();
    this.closed = new Promise((resolve) => ws.addEventListener("close", (e) => resolve(e.code)));
    ws.addEventListener("message", (e) => {
      this.frames.push(JSON.parse(e.data as string) as ConfigFrame);
      this.wake?.();
    });
  }

  async next(withinMs = 3000): Promise<ConfigFrame> {
    const deadline = Date.now() + withinMs;
    while (this.frames.length === 0) {
      if (Date.now() > deadline) throw new Error(`no frame within ${withinMs} ms`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
    }
    return this.frames.shift()!;
  }
}

async function subscribe(user: TestUser | null, query = "", headers: Record<string, string> = {}) {
  return exports.default.fetch(
    new Request(`https://outpost.test/v1/config/subscribe${query}`, {
      headers: {
        upgrade: "websocket",
        "cf-connecting-ip": freshIp(),
        ...(user ? { authorization: `Bearer ${user.accessToken}` } : {}),
        ...headers,
      },
    }),
  );
}

const put = (key: string, body: unknown) =>
  api(`/v1/admin/config/${key}`, { method: "PUT", token: serviceKey(), body });

describe("GET /v1/config/subscribe", () => {
  it("sends the caller's config on connect, and every change within seconds", async () => {
    await put("feed.pageSize", { value: 20, rules: [{ when: { platform: "android" }, value: 60 }] });
    const user = await signup();
    const ios = await subscribe(user, "", { "outpost-client": "ios/2.0.0" });
    expect(ios.status).toBe(101);
    const iosSocket = new ConfigSocket(ios.webSocket!);
    const android = await subscribe(user, "?client=android/2.0.0");
    const androidSocket = new ConfigSocket(android.webSocket!);

    const first = await iosSocket.next();
    expect(first).toMatchObject({ type: "config", values: { "feed.pageSize": 20, "chat.enabled": true } });
    expect((await androidSocket.next()).values["feed.pageSize"]).toBe(60);

    const changed = await put("feed.pageSize", { value: 30, rules: [{ when: { platform: "android" }, value: 70 }] });
    expect(changed.status).toBe(200);
    const update = await iosSocket.next();
    expect(update.values["feed.pageSize"]).toBe(30);
    expect(update.version).toBeGreaterThan(first.version);
    expect((await androidSocket.next()).values["feed.pageSize"]).toBe(70);

    await api("/v1/admin/config/feed.pageSize", { method: "DELETE", token: serviceKey() });
    expect((await iosSocket.next()).values["feed.pageSize"]).toBe(20);
  });

  it("answers a ping", async () => {
    const socket = new ConfigSocket((await subscribe(await signup())).webSocket!);
    await socket.next();
    socket.ws.send(JSON.stringify({ type: "ping" }));
    expect((await socket.next()).type).toBe("pong");
  });

  it("closes with 4401 when the session ends", async () => {
    const user = await signup();
    const socket = new ConfigSocket((await subscribe(user)).webSocket!);
    await socket.next();
    expect((await api("/v1/auth/logout", { method: "POST", token: user.accessToken, body: {} })).status).toBeLessThan(
      300,
    );
    expect(await socket.closed).toBe(4401);
  });

  it("refuses callers without a user's token, and requests that are not upgrades", async () => {
    const res = await subscribe(null);
    expect(res.status).toBe(401);
    const service = await subscribe(null, "", { authorization: `Bearer ${serviceKey()}` });
    expect(service.status).toBe(403);
    expectProblem(await api("/v1/config/subscribe", { token: (await signup()).accessToken }), 400, "bad_request");
    await expectStrangersRefused({ method: "GET", path: "/v1/config/subscribe" }, await signup());
  });
});

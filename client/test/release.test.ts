/** `client.config`, forced updates and `client.links` against the real Worker. */
import { afterAll, describe, expect, it } from "vitest";
import { UpgradeRequiredError } from "../src/index.js";
import { BASE, client, Sockets, signedIn, until } from "./helpers.js";
import { SERVICE_KEY } from "./worker.mjs";

/** An admin call with the service key. */
const admin = (method: string, key: string, body?: unknown) =>
  fetch(`${BASE}/v1/admin/config/${key}`, {
    method,
    headers: { authorization: `Bearer ${SERVICE_KEY}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

type AppConfig = { "feed.pageSize": number; "chat.enabled": boolean; "onboarding.variant": string };

afterAll(async () => {
  for (const key of ["feed.pageSize", "minVersion.android", "storeUrl.android"]) await admin("DELETE", key);
});

describe("client.config", () => {
  it("sends Outpost-Client on every request, gets the values for this app, typed by key", async () => {
    await admin("PUT", "feed.pageSize", { value: 20, rules: [{ when: { platform: "sdktest" }, value: 33 }] });
    const c = client({ app: { platform: "sdktest", version: "1.2.3", installId: "install-sdk-0001" } });
    const values = await c.config.refresh();
    expect(values["feed.pageSize"]).toBe(33);
    const typed = c.config as unknown as import("../src/release.js").RemoteConfig<AppConfig>;
    const size: number | undefined = typed.get("feed.pageSize");
    expect(size).toBe(33);
    expect(c.net.log.at(-1)!.status).toBe(200);
    // Unchanged: a 304, and the values stay.
    await c.config.refresh();
    expect(c.net.log.at(-1)!.status).toBe(304);
    expect(c.config.get("feed.pageSize")).toBe(33);
    const other = client();
    expect((await other.config.refresh())["feed.pageSize"]).toBe(20);
  });

  it("watch gets every change over the subscribe socket", async () => {
    const sockets = new Sockets();
    const c = await signedIn({ WebSocket: sockets.Ctor, app: { platform: "sdkwatch", version: "2.0.0" } });
    await admin("PUT", "feed.pageSize", { value: 21, rules: [{ when: { platform: "sdkwatch" }, value: 41 }] });
    const first = await until<Partial<Record<string, unknown>>>(
      (cb) => c.config.watch(cb),
      (v) => v["feed.pageSize"] === 41,
    );
    expect(first["chat.enabled"]).toBe(true);
    expect(sockets.all[0]!.url).toContain("client=sdkwatch%2F2.0.0");
    const changed = until<Partial<Record<string, unknown>>>(
      (cb) => c.config.watch(cb),
      (v) => v["feed.pageSize"] === 42,
    );
    await admin("PUT", "feed.pageSize", { value: 21, rules: [{ when: { platform: "sdkwatch" }, value: 42 }] });
    expect((await changed)["feed.pageSize"]).toBe(42);
    c.close();
  });

  it("a version below the minimum gets UpgradeRequiredError with the store URL; the config still answers", async () => {
    await admin("PUT", "minVersion.android", { value: "3.0.0" });
    await admin("PUT", "storeUrl.android", { value: "https://play.google.com/store/apps/details?id=x" });
    const c = await signedIn();
    const old = client({ app: { platform: "android", version: "2.9.0" }, storage: c.storage });
    await old.ready;
    const err = await old.teams.list().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UpgradeRequiredError);
    expect(err).toMatchObject({
      status: 426,
      code: "upgrade_required",
      storeUrl: "https://play.google.com/store/apps/details?id=x",
      minVersion: "3.0.0",
    });
    expect((await old.config.refresh())["minVersion.android"]).toBe("3.0.0");
    const current = client({ app: { platform: "android", version: "3.0.0" }, storage: c.storage });
    await current.ready;
    await expect(current.teams.list()).resolves.toMatchObject({ items: [] });
  });
});

describe("client.links", () => {
  it("create, list, resolve, delete", async () => {
    const c = await signedIn();
    const link = await c.links.create({ path: "/posts/1", title: "Hello" });
    expect(link.url).toMatch(/\/l\/[A-Za-z0-9_-]{16}$/);
    expect((await c.links.list()).items.map((l) => l.code)).toEqual([link.code]);
    // `cursor` starts the list after a page: the second link's page leads to the first.
    const second = await c.links.create({ path: "/posts/2" });
    const page = await c.links.list({ limit: 1 });
    expect(page.items.map((l) => l.code)).toEqual([second.code]);
    const next = await c.links.list({ limit: 1, cursor: page.nextCursor! });
    expect(next.items.map((l) => l.code)).toEqual([link.code]);
    expect(await c.links.resolve(`${link.url}?utm=x`)).toMatchObject({ code: link.code, path: "/posts/1" });
    await c.links.delete(link.code);
    await expect(c.links.resolve(link.code)).rejects.toMatchObject({ status: 404 });
  });
});

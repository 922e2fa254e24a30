/** Remote config over HTTP: GET /v1/config (rules, ETag, 304), the admin API (audited), "preview as", and 426. */
import { beforeEach, describe, expect, it } from "vitest";
import { rolloutBucket } from "../../../src/features/release/rules";
import { api, expectProblem, serviceKey, signup, type TestUser } from "../../helpers/api";
import { expectStrangersRefused } from "../../helpers/refusals";
import { signupAdmin } from "../admin/helpers";

const put = (key: string, body: unknown, token = serviceKey()) =>
  api(`/v1/admin/config/${key}`, { method: "PUT", token, body });
const config = (headers: Record<string, string> = {}, token?: string) => api("/v1/config", { headers, token });

beforeEach(async () => {
  for (const key of ["feed.pageSize", "chat.enabled", "onboarding.variant", "minVersion.ios", "storeUrl.ios"])
    await api(`/v1/admin/config/${key}`, { method: "DELETE", token: serviceKey() });
});

describe("GET /v1/config", () => {
  it("answers the code defaults and the reserved keys, with a version and an ETag", async () => {
    const res = await config();
    expect(res.status).toBe(200);
    expect(res.body.values).toEqual({
      "feed.pageSize": 20,
      "chat.enabled": true,
      "onboarding.variant": "a",
      "minVersion.ios": null,
      "minVersion.android": null,
      "storeUrl.ios": null,
      "storeUrl.android": null,
    });
    expect(typeof res.body.version).toBe("number");
    expect(res.headers.get("etag")).toMatch(/^"c\d+-/);
  });

  it("answers 304 to If-None-Match with the same ETag, 200 once something changed", async () => {
    const first = await config();
    const etag = first.headers.get("etag")!;
    const again = await config({ "if-none-match": etag });
    expect(again.status).toBe(304);
    expect((await put("feed.pageSize", { value: 40 })).status).toBe(200);
    const after = await config({ "if-none-match": etag });
    expect(after.status).toBe(200);
    expect(after.body.values["feed.pageSize"]).toBe(40);
    expect(after.body.version).toBeGreaterThan(first.body.version);
    expect(after.headers.get("etag")).not.toBe(etag);
  });

  it("applies the rules per caller: platform, version range, signed in, rollout by install id", async () => {
    const res = await put("onboarding.variant", {
      value: "b",
      rules: [
        { when: { platform: "android", maxAppVersion: "1.9.9" }, value: "old-android" },
        { when: { signedIn: true }, value: "member" },
        { when: { percent: 50 }, value: "half" },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ key: "onboarding.variant", value: "b" });
    expect(res.body.rules).toHaveLength(3);
    const user = await signup();
    const of = async (headers: Record<string, string>, token?: string) =>
      (await config(headers, token)).body.values["onboarding.variant"];
    expect(await of({ "outpost-client": "android/1.2.0" }, user.accessToken)).toBe("old-android");
    expect(await of({ "outpost-client": "android/2.10.0" }, user.accessToken)).toBe("member");
    expect(await of({ "outpost-client": "ios/1.0.0" })).toBe("b");
    const ids = Array.from({ length: 40 }, (_, i) => `install-${String(i).padStart(4, "0")}`);
    const inside = ids.find((id) => rolloutBucket("onboarding.variant", id) < 50)!;
    const outside = ids.find((id) => rolloutBucket("onboarding.variant", id) >= 50)!;
    expect(await of({ "outpost-install-id": inside })).toBe("half");
    expect(await of({ "outpost-install-id": outside })).toBe("b");
  });

  it("applies role and team rules to a signed-in caller", async () => {
    const member = await signup();
    const other = await signup();
    const team = await api("/v1/teams", { token: member.accessToken, body: { name: "Beta testers" } });
    expect(team.status).toBe(201);
    const admin = await signupAdmin();
    await put("chat.enabled", {
      value: false,
      rules: [
        { when: { role: "admin" }, value: true },
        { when: { teamId: team.body.id }, value: true },
      ],
    });
    const of = async (u: TestUser) => (await config({}, u.accessToken)).body.values["chat.enabled"];
    expect(await of(admin)).toBe(true);
    expect(await of(member)).toBe(true);
    expect(await of(other)).toBe(false);
    expect((await config()).body.values["chat.enabled"]).toBe(false);
  });

  it("refuses a bad token (it is optional, not ignored)", async () => {
    await expectStrangersRefused({ method: "GET", path: "/v1/config" }, await signup(), { anonymousAllowed: true });
  });
});

describe("the admin API", () => {
  it("lists every key with its code default, value and rules; DELETE goes back to the default", async () => {
    await put("feed.pageSize", { value: 10, rules: [{ when: { platform: "ios" }, value: 30 }] });
    const list = await api("/v1/admin/config", { token: serviceKey() });
    expect(list.status).toBe(200);
    const entry = list.body.items.find((i: { key: string }) => i.key === "feed.pageSize");
    expect(entry).toMatchObject({
      default: 20,
      value: 10,
      set: true,
      rules: [{ when: { platform: "ios" }, value: 30 }],
    });
    expect(list.body.items.find((i: { key: string }) => i.key === "chat.enabled")).toMatchObject({
      default: true,
      value: true,
      set: false,
    });
    expect((await api("/v1/admin/config/feed.pageSize", { method: "DELETE", token: serviceKey() })).status).toBe(204);
    expect((await config()).body.values["feed.pageSize"]).toBe(20);
  });

  it("audits every change", async () => {
    const admin = await signupAdmin();
    await put("onboarding.variant", { value: "c" }, admin.accessToken);
    await api("/v1/admin/config/onboarding.variant", { method: "DELETE", token: admin.accessToken });
    const audit = await api("/v1/admin/audit", { token: serviceKey() });
    const actions = audit.body.items.filter(
      (i: { actorId: string; target: string }) => i.actorId === admin.id && i.target === "config:onboarding.variant",
    );
    expect(actions.map((i: { action: string }) => i.action)).toEqual(["config.reset", "config.set"]);
    expect(actions[1].detail).toEqual({ value: "c", rules: [] });
  });

  it("refuses unknown keys, values of another type, bad versions and store URLs", async () => {
    expectProblem(await put("nope.key", { value: 1 }), 404, "not_found");
    expectProblem(await put("feed.pageSize", { value: "twenty" }), 400, "validation_failed");
    expectProblem(
      await put("feed.pageSize", { value: 1, rules: [{ when: {}, value: true }] }),
      400,
      "validation_failed",
    );
    expectProblem(await put("minVersion.ios", { value: "two" }), 400, "validation_failed");
    expectProblem(await put("minVersion.ios", { value: null }), 400, "validation_failed");
    expectProblem(await put("storeUrl.ios", { value: "http://insecure.example" }), 400, "validation_failed");
    expectProblem(
      await put("feed.pageSize", { value: 1, rules: [{ when: { percent: 101 }, value: 2 }] }),
      400,
      "validation_failed",
    );
    expectProblem(
      await put("feed.pageSize", { value: 1, rules: [{ when: { minAppVersion: "x" }, value: 2 }] }),
      400,
      "validation_failed",
    );
  });

  it('"preview as" answers what that client would get', async () => {
    const user = await signup();
    await put("feed.pageSize", {
      value: 25,
      rules: [
        { when: { platform: "ios", minAppVersion: "3.0.0" }, value: 50 },
        { when: { signedIn: true }, value: 35 },
      ],
    });
    const preview = (q: string) => api(`/v1/admin/config/preview?${q}`, { token: serviceKey() });
    expect((await preview("platform=ios&version=3.1.0")).body.values["feed.pageSize"]).toBe(50);
    expect((await preview("platform=ios&version=2.9.0")).body.values["feed.pageSize"]).toBe(25);
    expect((await preview(`platform=ios&version=2.9.0&userId=${user.id}`)).body.values["feed.pageSize"]).toBe(35);
    expectProblem(await preview("platform=ios&version=nope"), 400, "validation_failed");
  });

  it("refuses strangers (401) and non-admins (403) on every admin route", async () => {
    const user = await signup();
    const calls = [
      { method: "GET", path: "/v1/admin/config" },
      { method: "GET", path: "/v1/admin/config/preview" },
      { method: "PUT", path: "/v1/admin/config/feed.pageSize", opts: { body: { value: 5 } } },
      { method: "DELETE", path: "/v1/admin/config/feed.pageSize" },
      { method: "GET", path: "/v1/admin/links" },
    ];
    for (const call of calls) {
      await expectStrangersRefused(call, user);
      const res = await api(call.path, { ...call.opts, method: call.method, token: user.accessToken });
      expectProblem(res, 403, "forbidden");
    }
    expect((await config()).body.values["feed.pageSize"]).toBe(20);
  });
});

describe("forced updates (426)", () => {
  beforeEach(async () => {
    await put("minVersion.ios", { value: "2.10.0" });
    await put("storeUrl.ios", { value: "https://apps.apple.com/app/id123" });
  });

  it("refuses an older app with 426 upgrade_required and the store URL", async () => {
    const user = await signup();
    const res = await api("/v1/me", { token: user.accessToken, headers: { "outpost-client": "ios/2.9.9" } });
    expectProblem(res, 426, "upgrade_required");
    expect(res.body.storeUrl).toBe("https://apps.apple.com/app/id123");
    expect(res.body.minVersion).toBe("2.10.0");
    const pre = await api("/v1/me", { token: user.accessToken, headers: { "outpost-client": "ios/2.10.0-rc.1" } });
    expectProblem(pre, 426, "upgrade_required");
  });

  it("lets the minimum and newer through, other platforms, and requests without the header", async () => {
    const user = await signup();
    for (const client of ["ios/2.10.0", "ios/3.0.0", "android/1.0.0", "ios/not-a-version"])
      expect((await api("/v1/me", { token: user.accessToken, headers: { "outpost-client": client } })).status).toBe(
        200,
      );
    expect((await api("/v1/me", { token: user.accessToken })).status).toBe(200);
  });

  it("never refuses the config, health, the docs or deep links", async () => {
    const old = { "outpost-client": "ios/1.0.0" };
    const cfg = await config(old);
    expect(cfg.status).toBe(200);
    expect(cfg.body.values["minVersion.ios"]).toBe("2.10.0");
    for (const path of ["/v1/health", "/v1/openapi.json", "/.well-known/assetlinks.json"])
      expect((await api(path, { headers: old })).status, path).toBe(200);
    expect((await api("/v1/config/subscribe", { headers: old })).status).toBe(401);
  });

  it("a rule on minVersion applies too (e.g. per country or rollout)", async () => {
    await put("minVersion.ios", { value: "0.0.0", rules: [{ when: { maxAppVersion: "1.5.0" }, value: "1.5.1" }] });
    expectProblem(await api("/v1/unknown", { headers: { "outpost-client": "ios/1.5.0" } }), 426, "upgrade_required");
    expect((await api("/v1/unknown", { headers: { "outpost-client": "ios/1.6.0" } })).status).toBe(404);
  });
});

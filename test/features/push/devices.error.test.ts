import { describe, expect, it } from "vitest";
import { limits } from "../../../src/config";
import { api, expectProblem, serviceKey, signup } from "../../helpers/api";
import { apnsToken, expoToken, fcmToken, registerDevice } from "./helpers";

const paths = (res: Awaited<ReturnType<typeof api>>) =>
  (expectProblem(res, 400, "validation_failed").errors ?? []).map((e) => e.path);

describe("devices: errors", () => {
  it("rejects a body without token, platform or provider", async () => {
    const user = await signup();
    const res = await api("/v1/devices", { token: user.accessToken, body: {} });
    expect(paths(res).sort()).toEqual(["platform", "provider", "token"]);
  });

  it("rejects unknown platforms and providers, and unknown fields", async () => {
    const user = await signup();
    expect(
      paths(
        await api("/v1/devices", {
          token: user.accessToken,
          body: { token: fcmToken(), platform: "windows", provider: "fcm" },
        }),
      ),
    ).toEqual(["platform"]);
    expect(
      paths(
        await api("/v1/devices", {
          token: user.accessToken,
          body: { token: fcmToken(), platform: "android", provider: "gcm" },
        }),
      ),
    ).toEqual(["provider"]);
    const extra = await api("/v1/devices", {
      token: user.accessToken,
      body: { token: fcmToken(), platform: "android", provider: "fcm", userId: user.id },
    });
    expectProblem(extra, 400, "validation_failed");
  });

  it("rejects a token that is not the provider's kind, and a platform the provider cannot reach", async () => {
    const user = await signup();
    expect(
      paths(
        await api("/v1/devices", {
          token: user.accessToken,
          body: { token: "not-hex!", platform: "ios", provider: "apns" },
        }),
      ),
    ).toEqual(["token"]);
    expect(
      paths(
        await api("/v1/devices", {
          token: user.accessToken,
          body: { token: fcmToken(), platform: "ios", provider: "expo" },
        }),
      ),
    ).toEqual(["token"]);
    expect(
      paths(
        await api("/v1/devices", {
          token: user.accessToken,
          body: { token: "has space", platform: "android", provider: "fcm" },
        }),
      ),
    ).toEqual(["token"]);
    expect(
      paths(
        await api("/v1/devices", {
          token: user.accessToken,
          body: { token: apnsToken(), platform: "android", provider: "apns" },
        }),
      ),
    ).toEqual(["platform"]);
    expect(
      paths(
        await api("/v1/devices", {
          token: user.accessToken,
          body: { token: expoToken(), platform: "web", provider: "expo" },
        }),
      ),
    ).toEqual(["platform"]);
    expect(
      paths(
        await api("/v1/devices", {
          token: user.accessToken,
          body: { token: "x".repeat(limits.pushTokenMax + 1), platform: "android", provider: "fcm" },
        }),
      ),
    ).toEqual(["token"]);
  });

  it("answers 404 for a device that does not exist", async () => {
    const user = await signup();
    expectProblem(
      await api("/v1/devices/00000000-0000-7000-8000-000000000000", { method: "DELETE", token: user.accessToken }),
      404,
      "not_found",
    );
  });

  it("deleting twice answers 404 the second time", async () => {
    const user = await signup();
    const d = await registerDevice(user, fcmToken(), "fcm");
    expect((await api(`/v1/devices/${d.id}`, { method: "DELETE", token: user.accessToken })).status).toBe(204);
    expectProblem(await api(`/v1/devices/${d.id}`, { method: "DELETE", token: user.accessToken }), 404, "not_found");
  });

  it("rejects bad list parameters", async () => {
    const user = await signup();
    expectProblem(await api("/v1/devices?limit=0", { token: user.accessToken }), 400, "validation_failed");
    expectProblem(await api("/v1/devices?limit=201", { token: user.accessToken }), 400, "validation_failed");
    expectProblem(await api("/v1/devices?cursor=garbage", { token: user.accessToken }), 400, "validation_failed");
  });
});

describe("admin push: errors", () => {
  const push = (body: unknown) => api("/v1/admin/push", { token: serviceKey(), body });
  const ok = { userIds: ["u1"], title: "t", body: "b" };

  it("needs users, a title and a body", async () => {
    expect(paths(await push({})).sort()).toEqual(["body", "title", "userIds"]);
    expect(paths(await push({ ...ok, userIds: [] }))).toEqual(["userIds"]);
    expect(paths(await push({ ...ok, title: "   " }))).toEqual(["title"]);
  });

  it("caps recipients and lengths", async () => {
    expect(
      paths(await push({ ...ok, userIds: Array.from({ length: limits.pushAdminUsersMax + 1 }, (_, i) => `u${i}`) })),
    ).toEqual(["userIds"]);
    expect(paths(await push({ ...ok, title: "x".repeat(limits.pushTitleMax + 1) }))).toEqual(["title"]);
    expect(paths(await push({ ...ok, body: "x".repeat(limits.pushBodyMax + 1) }))).toEqual(["body"]);
  });

  it("takes data only as string values under keys the providers do not reserve, within the size cap", async () => {
    expectProblem(await push({ ...ok, data: { count: 3 } }), 400, "validation_failed");
    expectProblem(await push({ ...ok, data: { aps: "x" } }), 400, "validation_failed");
    expectProblem(await push({ ...ok, data: { "google.x": "x" } }), 400, "validation_failed");
    expectProblem(await push({ ...ok, data: { from: "x" } }), 400, "validation_failed");
    expectProblem(await push({ ...ok, data: { big: "x".repeat(limits.pushDataMaxBytes) } }), 400, "validation_failed");
    expectProblem(await push({ ...ok, data: "x" }), 400, "validation_failed");
  });

  it("rejects unknown fields", async () => {
    expectProblem(await push({ ...ok, badge: 3 }), 400, "validation_failed");
  });
});

import { describe, expect, it } from "vitest";
import { api, expectProblem, serviceKey, signup } from "../../helpers/api";
import { fcmToken, listDevices, registerDevice } from "./helpers";

const body = () => ({ token: fcmToken(), platform: "android", provider: "fcm" });
const ID = "00000000-0000-7000-8000-000000000000";

describe("devices: security", () => {
  it("every route needs a token", async () => {
    expectProblem(await api("/v1/devices", { body: body() }), 401, "unauthorized");
    expectProblem(await api("/v1/devices"), 401, "unauthorized");
    expectProblem(await api(`/v1/devices/${ID}`, { method: "DELETE" }), 401, "unauthorized");
  });

  it("a garbage token is refused", async () => {
    const token = "not.a.jwt";
    expectProblem(await api("/v1/devices", { token, body: body() }), 401, "unauthorized");
    expectProblem(await api("/v1/devices", { token }), 401, "unauthorized");
    expectProblem(await api(`/v1/devices/${ID}`, { method: "DELETE", token }), 401, "unauthorized");
  });

  it("the service key cannot register devices (they belong to a user)", async () => {
    expectProblem(await api("/v1/devices", { token: serviceKey(), body: body() }), 403, "forbidden");
  });

  it("another user's device is invisible and cannot be deleted", async () => {
    const alice = await signup();
    const mallory = await signup();
    const d = await registerDevice(alice, fcmToken(), "fcm");
    expect(await listDevices(mallory)).toEqual([]);
    expectProblem(await api(`/v1/devices/${d.id}`, { method: "DELETE", token: mallory.accessToken }), 404, "not_found");
    expect((await listDevices(alice)).map((x) => x.id)).toEqual([d.id]);
  });

  it("after a token moved to a new owner, the previous owner can no longer delete it", async () => {
    const alice = await signup();
    const bob = await signup();
    const token = fcmToken();
    const d = await registerDevice(alice, token, "fcm");
    expect(
      (await api("/v1/devices", { token: bob.accessToken, body: { token, platform: "android", provider: "fcm" } }))
        .status,
    ).toBe(200);
    expectProblem(await api(`/v1/devices/${d.id}`, { method: "DELETE", token: alice.accessToken }), 404, "not_found");
    expect((await listDevices(bob)).map((x) => x.id)).toEqual([d.id]);
  });
});

describe("admin push: security", () => {
  const push = { userIds: ["u1"], title: "t", body: "b" };

  it("needs the service key: none → 401, garbage → 401, a user's token → 403", async () => {
    expectProblem(await api("/v1/admin/push", { body: push }), 401, "unauthorized");
    expectProblem(await api("/v1/admin/push", { token: "garbage", body: push }), 401, "unauthorized");
    const user = await signup();
    expectProblem(await api("/v1/admin/push", { token: user.accessToken, body: push }), 403, "forbidden");
  });
});

/** The console's Config page: admins only, the keys, a key's editor (token, validation, audit), reset, preview as. */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { api, signup, type TestUser } from "../../helpers/api";
import { signIn, visit } from "../admin/console-helpers";
import { signupAdmin } from "../admin/helpers";

let admin: TestUser;
beforeAll(async () => {
  admin = await signupAdmin();
});

describe("the console's Config page", () => {
  it("lists the keys with their code defaults, for admins only", async () => {
    const { b } = await signIn(admin);
    const page = await visit(b, "/admin/config");
    expect(page.status).toBe(200);
    for (const key of ["feed.pageSize", "chat.enabled", "onboarding.variant", "minVersion.ios"])
      expect(page.html).toContain(key);
    const stranger = await signIn(await signup());
    const refused = await visit(stranger.b, "/admin/config");
    expect(refused.status).not.toBe(200);
    expect(refused.html).not.toContain("onboarding.variant");
  });

  it("saves a value and rules (token required, bad JSON refused), audits it, and resets with a confirmation", async () => {
    const { b, csrf } = await signIn(admin);
    const path = "/admin/config/feed.pageSize";
    const rules = JSON.stringify([{ when: { platform: "ios" }, value: 50 }]);
    expect((await visit(b, path, { _csrf: "wrong", value: "30", rules })).status).toBe(403);
    const bad = await visit(b, path, { _csrf: csrf, value: "thirty", rules });
    expect(bad.status).toBe(400);
    expect(bad.html).toContain("not valid JSON");
    const wrongType = await visit(b, path, { _csrf: csrf, value: '"thirty"', rules });
    expect(wrongType.status).toBe(400);
    expect(wrongType.html).toContain("must be a number");
    const saved = await visit(b, path, { _csrf: csrf, value: "30", rules });
    expect(saved.status).toBe(303);
    const cfg = (h: Record<string, string>) => api("/v1/config", { headers: h });
    expect((await cfg({ "outpost-client": "ios/1.0.0" })).body.values["feed.pageSize"]).toBe(50);
    expect((await cfg({})).body.values["feed.pageSize"]).toBe(30);
    const audit = await env.DB.prepare(
      "SELECT action, actor_id FROM audit_log WHERE target = 'config:feed.pageSize'",
    ).all();
    expect(audit.results).toContainEqual({ action: "config.set", actor_id: admin.id });

    const ask = await visit(b, `${path}/reset`, { _csrf: csrf });
    expect(ask.html).toContain("Are you sure?");
    expect((await cfg({})).body.values["feed.pageSize"]).toBe(30);
    expect((await visit(b, `${path}/reset`, { _csrf: csrf, confirm: "yes" })).status).toBe(303);
    expect((await cfg({})).body.values["feed.pageSize"]).toBe(20);
  });

  it('"preview as" shows what a client with that platform, version and user would get', async () => {
    const user = await signup();
    await api("/v1/admin/config/onboarding.variant", {
      method: "PUT",
      token: env.SERVICE_KEY,
      body: {
        value: "plain",
        rules: [
          { when: { platform: "android", minAppVersion: "3.0.0" }, value: "new-android" },
          { when: { signedIn: true }, value: "member" },
        ],
      },
    });
    const { b } = await signIn(admin);
    const of = async (q: string) => (await visit(b, `/admin/config?${q}`)).html;
    expect(await of("platform=android&version=3.1.0")).toContain("&quot;new-android&quot;");
    expect(await of("platform=android&version=2.0.0")).toContain("&quot;plain&quot;");
    expect(await of(`platform=ios&version=2.0.0&userId=${user.id}`)).toContain("&quot;member&quot;");
  });
});

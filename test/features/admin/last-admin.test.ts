/**
 * Issue 23.8: the last active admin cannot be demoted, disabled or deleted (409), on every path,
 * and two admins demoting each other at once cannot both succeed (a trigger guards the write).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, expectProblem } from "../../helpers/api";
import { signupAdmin } from "./helpers";

const patch = (id: string, body: Record<string, unknown>) =>
  api(`/v1/admin/users/${id}`, { method: "PATCH", token: env.SERVICE_KEY, body });

/** A new admin that is the only active one (every earlier admin of this file is demoted). */
async function onlyAdmin() {
  const admin = await signupAdmin();
  await env.DB.prepare("UPDATE users SET role = 'user' WHERE role = 'admin' AND id <> ?").bind(admin.id).run();
  return admin;
}

describe("the last active admin", () => {
  it("cannot be demoted, disabled or deleted, through the API or by deleting itself", async () => {
    const ada = await onlyAdmin();
    expectProblem(await patch(ada.id, { role: "user" }), 409, "conflict");
    expectProblem(await patch(ada.id, { disabled: true }), 409, "conflict");
    expectProblem(
      await api(`/v1/admin/users/${ada.id}`, { method: "DELETE", token: env.SERVICE_KEY }),
      409,
      "conflict",
    );
    expectProblem(await api("/v1/me", { method: "DELETE", token: ada.accessToken }), 409, "conflict");
    // Nothing was half-written: still an active admin, still there.
    const me = await api("/v1/me", { token: ada.accessToken });
    expect(me.body).toMatchObject({ role: "admin", disabled: false });
  });

  it("can step down once another admin is active, and that one is then the last", async () => {
    const [ada, bea] = [await onlyAdmin(), await signupAdmin()];
    expect((await patch(ada.id, { role: "user" })).status).toBe(200);
    expectProblem(await patch(bea.id, { disabled: true }), 409, "conflict");
    expect((await patch(ada.id, { role: "admin" })).status).toBe(200);
    expect((await patch(bea.id, { disabled: true })).status).toBe(200);
  });

  it("of two admins demoting each other at once, exactly one succeeds", async () => {
    const [ada, bea] = [await onlyAdmin(), await signupAdmin()];
    const answers = await Promise.all([
      api(`/v1/admin/users/${bea.id}`, { method: "PATCH", token: ada.accessToken, body: { role: "user" } }),
      api(`/v1/admin/users/${ada.id}`, { method: "PATCH", token: bea.accessToken, body: { role: "user" } }),
    ]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
    const { results } = await env.DB.prepare(
      "SELECT count(*) AS n FROM users WHERE role = 'admin' AND disabled = 0",
    ).all<{ n: number }>();
    expect(results[0]?.n).toBe(1);
  });
});

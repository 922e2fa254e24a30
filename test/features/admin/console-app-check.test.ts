/**
 * The console's App integrity page: admins only; it shows the mode and the monitor counts per
 * platform and reason; a debug token is made (its secret shown once, never again), listed and
 * revoked (with the form's token and a confirmation, audited); a revoked token no longer exchanges.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, signup } from "../../helpers/api";
import { signIn, visit } from "./console-helpers";
import { signupAdmin } from "./helpers";

const PAGE = "/admin/app-check";

describe("the App integrity page", () => {
  it("is for admins only", async () => {
    const user = await signup();
    const { b } = await signIn(user);
    const res = await visit(b, PAGE);
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/admin/login");
  });

  it("shows the mode and what the guard counted", async () => {
    await env.DB.prepare(
      "INSERT INTO appcheck_counts (day, platform, reason, count) VALUES (?, 'android', 'expired', 7)",
    )
      .bind(new Date().toISOString().slice(0, 10))
      .run();
    const { b } = await signIn(await signupAdmin());
    const res = await visit(b, PAGE);
    expect(res.status).toBe(200);
    expect(res.html).toContain("Mode <code>off</code>");
    expect(res.html).toMatch(/android<\/td>.*expired.*7/s);
    expect(res.html).toMatch(/\d+ of \d+ guarded requests/);
  });

  it("makes a debug token shown once, revokes it with a confirmation and the token; both audited", async () => {
    const admin = await signupAdmin();
    const { b, csrf } = await signIn(admin);
    expect((await visit(b, `${PAGE}/debug-tokens`, { _csrf: "wrong", name: "x" })).status).toBe(403);
    expect((await visit(b, `${PAGE}/debug-tokens`, { _csrf: csrf, name: " " })).status).toBe(400);
    const made = await visit(b, `${PAGE}/debug-tokens`, { _csrf: csrf, name: "Simulator" });
    expect(made.status).toBe(200);
    const secret = /shown only now: <code>([^<]+)<\/code>/.exec(made.html)?.[1];
    expect(secret).toMatch(/^opdbg_/);
    const again = await visit(b, PAGE);
    expect(again.html).toContain("Simulator");
    expect(again.html).not.toContain(secret!);
    expect((await api("/v1/app-check/debug", { body: { debugToken: secret } })).status).toBe(200);

    const id = /\/admin\/app-check\/debug-tokens\/([0-9a-f-]{36})\/revoke/.exec(again.html)?.[1];
    const path = `${PAGE}/debug-tokens/${id}/revoke`;
    expect((await visit(b, path, { _csrf: "wrong", confirm: "yes" })).status).toBe(403);
    expect((await visit(b, path, { _csrf: csrf })).html).toContain("Are you sure?");
    expect((await api("/v1/app-check/debug", { body: { debugToken: secret } })).status).toBe(200);
    const done = await visit(b, path, { _csrf: csrf, confirm: "yes" });
    expect(done.status).toBe(303);
    expect(done.headers.get("location")).toBe(`${PAGE}?done=debug-token-revoked`);
    expect((await api("/v1/app-check/debug", { body: { debugToken: secret } })).status).toBe(401);
    expect((await visit(b, path, { _csrf: csrf, confirm: "yes" })).status).toBe(404);

    const rows = await env.DB.prepare("SELECT actor_id, action FROM audit_log WHERE target = ? ORDER BY id")
      .bind(`app_check_debug_token:${id}`)
      .all<{ actor_id: string; action: string }>();
    expect(rows.results).toEqual([
      { actor_id: admin.id, action: "app_check.debug_token.create" },
      { actor_id: admin.id, action: "app_check.debug_token.revoke" },
    ]);
  });
});

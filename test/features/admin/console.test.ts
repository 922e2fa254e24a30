/**
 * Issue 17.3: the console at /admin, in workerd (the browser run is test/browser/console.e2e.mjs):
 * sign-in for admins only, the session cookie's attributes, the Content-Security-Policy, both
 * CSRF checks, confirmation before destructive actions, and actions that the API then reflects.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { api, expectProblem, signup, type TestUser } from "../../helpers/api";
import { type Browser, csrfOf, signIn, visit } from "./console-helpers";
import { signupAdmin } from "./helpers";

let admin: TestUser;
beforeAll(async () => {
  admin = await signupAdmin();
});

describe("sign-in", () => {
  it("pages need a signed-in admin: GET redirects to the sign-in page, POST is refused", async () => {
    const b: Browser = { cookies: new Map() };
    const res = await visit(b, "/admin/users");
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/admin/login");
    expect((await visit(b, "/admin")).headers.get("location")).toBe("/admin/login");
    expect((await visit(b, "/admin/")).headers.get("location")).toBe("/admin");
    expect((await visit(b, "/admin/users/01900000-0000-7000-8000-000000000001/disable", { _csrf: "x" })).status).toBe(
      403,
    );
  });

  it("an admin signs in: the session cookie is HttpOnly, Secure, SameSite=Strict, scoped to /admin", async () => {
    const { res, home } = await signIn(admin);
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/admin");
    const cookie = res.setCookies.find((c) => c.startsWith("__Secure-outpost_admin="))!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/Secure/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Path=\/admin(;|$)/);
    expect(home.status).toBe(200);
    expect(home.html).toContain("Overview");
    expect(home.html).toContain(admin.email);
  });

  it("a non-admin's right password is refused like a wrong one, and no session cookie is set", async () => {
    const user = await signup();
    const b: Browser = { cookies: new Map() };
    const login = await visit(b, "/admin/login");
    const res = await visit(b, "/admin/login", {
      _csrf: csrfOf(login.html),
      email: user.email,
      password: user.password,
    });
    expect(res.status).toBe(401);
    expect(res.html).toContain("may not use the console");
    expect(res.setCookies.some((c) => c.startsWith("__Secure-outpost_admin="))).toBe(false);
    const wrong = await visit(b, "/admin/login", {
      _csrf: csrfOf(res.html),
      email: admin.email,
      password: "not the password",
    });
    expect(wrong.status).toBe(401);
    expect((await visit(b, "/admin")).status).toBe(303);
  });

  it("an admin whose email is not verified is refused (issue 23.8)", async () => {
    const unverified = await signupAdmin();
    await env.DB.prepare("UPDATE users SET email_verified = 0 WHERE id = ?").bind(unverified.id).run();
    const { res } = await signIn(unverified);
    expect(res.status).toBe(401);
    expect(res.html).toContain("may not use the console");
    expect(res.setCookies.some((c) => c.startsWith("__Secure-outpost_admin="))).toBe(false);
  });

  it("the sign-in form needs its token too", async () => {
    const b: Browser = { cookies: new Map() };
    await visit(b, "/admin/login");
    const res = await visit(b, "/admin/login", { email: admin.email, password: admin.password });
    expect(res.status).toBe(403);
    expect(res.setCookies.some((c) => c.startsWith("__Secure-outpost_admin="))).toBe(false);
  });

  it("signing out ends the console session (the old cookie no longer works)", async () => {
    const { b, csrf } = await signIn(admin);
    const cookie = b.cookies.get("__Secure-outpost_admin")!;
    expect((await visit(b, "/admin/logout", { _csrf: csrf })).status).toBe(303);
    const replay: Browser = { cookies: new Map([["__Secure-outpost_admin", cookie]]) };
    expect((await visit(replay, "/admin")).status).toBe(303);
  });

  it("a demoted or disabled admin's console session stops working at once", async () => {
    const other = await signupAdmin();
    const { b } = await signIn(other);
    expect((await visit(b, "/admin")).status).toBe(200);
    await api(`/v1/admin/users/${other.id}`, { method: "PATCH", token: env.SERVICE_KEY, body: { role: "user" } });
    expect((await visit(b, "/admin")).status).toBe(303);
  });
});

describe("headers and CSRF", () => {
  it("pages carry a strict Content-Security-Policy and cannot be framed", async () => {
    const { b } = await signIn(admin);
    for (const path of ["/admin/login", "/admin"]) {
      const res = await visit(b, path);
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp).toContain("default-src 'none'");
      // Only the console's own script and stylesheet (issue 23.5): not every path of this origin,
      // where a user's upload could otherwise pass as a script.
      expect(csp).toContain("script-src https://outpost.test/admin/admin.js;");
      expect(csp).toContain("style-src https://outpost.test/admin/admin.css;");
      expect(csp).not.toMatch(/(script|style)-src [^;]*'self'/);
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain("unsafe-inline");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
    }
    const home = await visit(b, "/admin");
    expect(home.html).not.toMatch(/<script>|style=/);
    expect(home.headers.get("cache-control")).toBe("no-store");
  });

  // A refused form changes nothing.
  it("a form with no token, another session's token or another origin is refused", async () => {
    const target = await signup();
    const { b, csrf } = await signIn(admin);
    const { csrf: otherCsrf } = await signIn(admin);
    const path = `/admin/users/${target.id}/disable`;
    expect((await visit(b, path, { confirm: "yes" })).status).toBe(403);
    expect((await visit(b, path, { confirm: "yes", _csrf: otherCsrf })).status).toBe(403);
    expect((await visit(b, path, { confirm: "yes", _csrf: csrf }, { origin: "https://evil.example" })).status).toBe(
      403,
    );
    expect(
      (
        await visit(
          b,
          path,
          { confirm: "yes", _csrf: csrf },
          { origin: "https://evil.example", "sec-fetch-site": "cross-site" },
        )
      ).status,
    ).toBe(403);
    expect((await api("/v1/auth/login", { body: { email: target.email, password: target.password } })).status).toBe(
      200,
    );
    // With the token, from this origin: done.
    expect((await visit(b, path, { confirm: "yes", _csrf: csrf })).status).toBe(303);
    expectProblem(
      await api("/v1/auth/login", { body: { email: target.email, password: target.password } }),
      403,
      "account_disabled",
    );
  });
});

describe("pages and actions", () => {
  it("every page renders for an admin", async () => {
    const u = await signup();
    const note = await api("/v1/collections/notes/records", {
      token: u.accessToken,
      body: { title: "seen by the console" },
    });
    const post = await api("/v1/collections/posts/records", {
      token: u.accessToken,
      body: { text: "from a note", fromNoteId: note.body.id },
    });
    expect(post.status, post.text).toBe(201);
    const room = await api("/v1/rooms", {
      token: u.accessToken,
      body: { kind: "group", name: "Console room", memberIds: [] },
    });
    await api(`/v1/rooms/${room.body.id}/messages`, {
      token: u.accessToken,
      body: { clientId: "c1", text: "hello console" },
    });
    await api("/v1/files?name=pic.txt&visibility=private", {
      token: u.accessToken,
      raw: "bytes",
      headers: { "content-type": "text/plain" },
    });
    const { b } = await signIn(admin);
    const pages: [string, string][] = [
      ["/admin", "Recent signups"],
      ["/admin/users", u.email],
      [`/admin/users?q=${encodeURIComponent(u.email)}`, u.email],
      [`/admin/users/${u.id}`, "Live sessions"],
      [`/admin/users/${u.id}/devices`, "no push devices"],
      ["/admin/collections/notes", "seen by the console"],
      [
        // Across all owners a list filters on its sort field (the API's rule): sort by title.
        `/admin/collections/notes?where=${encodeURIComponent(JSON.stringify({ title: "seen by the console" }))}` +
          "&sort=title",
        "seen by the console",
      ],
      [`/admin/collections/notes/${note.body.id}`, "seen by the console"],
      ["/admin/collections/posts", "from a note"],
      // The search box runs the API's full-text search.
      ["/admin/collections/posts?search=FROM+NOT", "from a note"],
      // A reference is a link to the record it names.
      [`/admin/collections/posts/${post.body.id}`, `href="/admin/collections/notes/${note.body.id}"`],
      ["/admin/files", "pic.txt"],
      ["/admin/rooms", "Console room"],
      [`/admin/rooms/${room.body.id}`, "hello console"],
      ["/admin/audit", "Audit log"],
    ];
    for (const [path, text] of pages) {
      const res = await visit(b, path);
      expect(res.status, `${path}: ${res.html.slice(0, 300)}`).toBe(200);
      expect(res.html, path).toContain(text.replaceAll("&", "&amp;"));
    }
    expect((await visit(b, "/admin/users/not-an-id")).status).toBe(404);
    expect((await visit(b, "/admin/collections/nope")).status).toBe(404);
  });

  it("a bad filter shows the API's validation errors", async () => {
    const { b } = await signIn(admin);
    const res = await visit(b, `/admin/collections/notes?where=${encodeURIComponent('{"nope":1}')}`);
    expect(res.status).toBe(400);
    expect(res.html).toContain("not valid");
    expect(res.html).toContain("nope");
  });

  it("a destructive action asks first (confirmation page), and does it once confirmed", async () => {
    const u = await signup();
    const { b, csrf } = await signIn(admin);
    const first = await visit(b, `/admin/users/${u.id}/delete`, { _csrf: csrf });
    expect(first.status).toBe(200);
    expect(first.html).toContain("Are you sure?");
    expect((await api(`/v1/admin/users/${u.id}`, { token: env.SERVICE_KEY })).status).toBe(200);
    const done = await visit(b, `/admin/users/${u.id}/delete`, { _csrf: csrfOf(first.html), confirm: "yes" });
    expect(done.status).toBe(303);
    expect((await api(`/v1/admin/users/${u.id}`, { token: env.SERVICE_KEY })).status).toBe(404);
  });

  it("editing a record uses the collection's validation; the API and audit log show the edit", async () => {
    const u = await signup();
    const note = await api("/v1/collections/notes/records", {
      token: u.accessToken,
      body: { title: "before", tags: ["a"] },
    });
    const { b, csrf } = await signIn(admin);
    const path = `/admin/collections/notes/${note.body.id}`;
    const bad = await visit(b, path, { _csrf: csrf, _version: "1", title: "", body: "", pinned: "true", tags: "a" });
    expect(bad.status).toBe(400);
    expect(bad.html).toContain("title");
    expect(
      (await api(path.replace("/admin", "/v1").replace("/notes/", "/notes/records/"), { token: u.accessToken })).body
        .title,
    ).toBe("before");
    const ok = await visit(b, path, {
      _csrf: csrf,
      _version: "1",
      title: "after",
      body: "edited\nbody",
      pinned: "true",
      tags: "x\ny",
    });
    expect(ok.status).toBe(303);
    const rec = await api(`/v1/collections/notes/records/${note.body.id}`, { token: u.accessToken });
    expect(rec.body).toMatchObject({
      title: "after",
      body: "edited\nbody",
      pinned: true,
      tags: ["x", "y"],
      version: 2,
    });
    // A stale version is not overwritten.
    const stale = await visit(b, path, {
      _csrf: csrf,
      _version: "1",
      title: "stale",
      body: "",
      pinned: "false",
      tags: "",
    });
    expect(stale.status).toBe(412);
    const audit = await api("/v1/admin/audit?limit=1", { token: env.SERVICE_KEY });
    expect(audit.body.items[0]).toMatchObject({
      actorId: admin.id,
      action: "record.update",
      target: `notes:${note.body.id}`,
    });
  });

  it("deleting a message uses the room's deletion: the API's history shows the tombstone", async () => {
    const u = await signup();
    const room = await api("/v1/rooms", { token: u.accessToken, body: { kind: "group", name: "r", memberIds: [] } });
    const sent = await api(`/v1/rooms/${room.body.id}/messages`, {
      token: u.accessToken,
      body: { clientId: "m1", text: "remove me" },
    });
    const { b, csrf } = await signIn(admin);
    const res = await visit(b, `/admin/rooms/${room.body.id}/messages/${sent.body.seq}/delete`, {
      _csrf: csrf,
      confirm: "yes",
    });
    expect(res.status).toBe(303);
    const history = await api(`/v1/rooms/${room.body.id}/messages`, { token: u.accessToken });
    expect(history.body.items[0]).toMatchObject({ seq: sent.body.seq, deleted: true, text: null });
  });

  it("files: an image shows inline (sandboxed), anything else downloads; delete removes it", async () => {
    const u = await signup();
    const png = Uint8Array.from(
      atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="),
      (ch) => ch.charCodeAt(0),
    );
    const img = await api("/v1/files?name=dot.png&visibility=private", {
      token: u.accessToken,
      raw: png,
      headers: { "content-type": "image/png" },
    });
    expect(img.status, img.text).toBe(201);
    const { b, csrf } = await signIn(admin);
    const inline = await visit(b, `/admin/files/${img.body.id}/content`);
    expect(inline.status).toBe(200);
    expect(inline.headers.get("content-disposition")).toMatch(/^inline/);
    expect(inline.headers.get("content-security-policy")).toContain("sandbox");
    expect(
      (await visit(b, `/admin/files/${img.body.id}/content?download=1`)).headers.get("content-disposition"),
    ).toMatch(/^attachment/);
    expect((await visit(b, `/admin/files/${img.body.id}/delete`, { _csrf: csrf, confirm: "yes" })).status).toBe(303);
    expect((await api(`/v1/files/${img.body.id}`, { token: u.accessToken })).status).toBe(404);
  });

  it("a test push is queued for the user's device and audited", async () => {
    const u = await signup();
    const dev = await api("/v1/devices", {
      token: u.accessToken,
      body: { token: `console-${u.id}`, platform: "android", provider: "fcm" },
    });
    const { b, csrf } = await signIn(admin);
    const res = await visit(b, `/admin/users/${u.id}/devices/${dev.body.id}/test-push`, { _csrf: csrf });
    expect(res.status).toBe(303);
    const audit = await api("/v1/admin/audit?limit=1", { token: env.SERVICE_KEY });
    expect(audit.body.items[0]).toMatchObject({
      action: "push.test",
      target: `user:${u.id}`,
      detail: { deviceId: dev.body.id },
    });
    expect(
      (await visit(b, `/admin/users/${u.id}/devices/01900000-0000-7000-8000-000000000001/test-push`, { _csrf: csrf }))
        .status,
    ).toBe(404);
  });
});

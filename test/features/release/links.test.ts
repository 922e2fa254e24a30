/** Deep links: the .well-known files, short links (create, list, delete, resolve), the page per user agent. */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { primaryDb } from "../../../src/db";
import { flushOpens } from "../../../src/features/release/links";
import { api, expectProblem, freshIp, serviceKey, signup } from "../../helpers/api";
import { expectStrangersRefused, expectWrongOwnerRefused } from "../../helpers/refusals";

const UA = {
  ios: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
  android: "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36",
  desktop: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/18.0 Safari/605.1.15",
  bot: "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
};

/** Opens a short link as a browser would, without following the redirect. */
async function open(code: string, ua: string) {
  const res = await exports.default.fetch(
    new Request(`https://outpost.test/l/${code}`, {
      headers: { "user-agent": ua, "cf-connecting-ip": freshIp() },
      redirect: "manual",
    }),
  );
  const text = await res.text();
  const json = (res.headers.get("content-type") ?? "").includes("json");
  return { status: res.status, headers: res.headers, text, body: json ? JSON.parse(text) : text };
}

describe("the .well-known files", () => {
  it("apple-app-site-association names the app for links and passkeys, and the paths, as JSON, cacheable", async () => {
    const res = await api("/.well-known/apple-app-site-association");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("cache-control")).toMatch(/max-age=\d+/);
    expect(res.body.applinks.details).toEqual([
      { appIDs: ["ABCDE12345.com.example.outpost"], components: [{ "/": "/l/*" }] },
    ]);
    // Passkeys on iOS need the app listed under webcredentials.
    expect(res.body.webcredentials).toEqual({ apps: ["ABCDE12345.com.example.outpost"] });
  });

  it("assetlinks.json names the package and its certificate fingerprint", async () => {
    const res = await api("/.well-known/assetlinks.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("cache-control")).toMatch(/max-age=\d+/);
    expect(res.body).toEqual([
      {
        relation: ["delegate_permission/common.handle_all_urls", "delegate_permission/common.get_login_creds"],
        target: {
          namespace: "android_app",
          package_name: "com.example.outpost",
          sha256_cert_fingerprints: [`${"AB:".repeat(31)}CD`],
        },
      },
    ]);
  });
});

describe("short links", () => {
  it("creates a link with an unguessable code, lists it, resolves it, deletes it", async () => {
    const user = await signup();
    const res = await api("/v1/links", {
      token: user.accessToken,
      body: { path: "/posts/42", fallbackUrl: "https://example.com/posts/42", title: "A post" },
    });
    expect(res.status).toBe(201);
    expect(res.body.code).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(res.body.url).toBe(`https://outpost.test/l/${res.body.code}`);
    const other = await api("/v1/links", { token: user.accessToken, body: { path: "/posts/42" } });
    expect(other.body.code).not.toBe(res.body.code);

    const list = await api("/v1/links", { token: user.accessToken });
    expect(list.body.items.map((l: { code: string }) => l.code)).toEqual([other.body.code, res.body.code]);
    const resolved = await api(`/v1/links/${res.body.code}`);
    expect(resolved.body).toEqual({
      code: res.body.code,
      path: "/posts/42",
      fallbackUrl: "https://example.com/posts/42",
      title: "A post",
      imageUrl: null,
    });
    expect((await api(`/v1/links/${res.body.code}`, { method: "DELETE", token: user.accessToken })).status).toBe(204);
    expectProblem(await api(`/v1/links/${res.body.code}`), 404, "not_found");
    expectProblem(await open(res.body.code, UA.desktop), 404, "not_found");
  });

  it("refuses bad bodies", async () => {
    const user = await signup();
    for (const body of [
      {},
      { path: "posts/1" },
      { path: "/a", fallbackUrl: "javascript:alert(1)" },
      { path: "/a", imageUrl: "http://plain.example/x.png" },
      { path: "/a", extra: 1 },
    ])
      expectProblem(await api("/v1/links", { token: user.accessToken, body }), 400, "validation_failed");
  });

  it("refuses strangers on every signed-in route, and someone else's link is not found", async () => {
    const owner = await signup();
    const stranger = await signup();
    const { body } = await api("/v1/links", { token: owner.accessToken, body: { path: "/x" } });
    await expectStrangersRefused({ method: "POST", path: "/v1/links", opts: { body: { path: "/x" } } }, owner);
    await expectStrangersRefused({ method: "GET", path: "/v1/links" }, owner);
    await expectStrangersRefused({ method: "DELETE", path: `/v1/links/${body.code}` }, owner);
    const theirs = await api("/v1/links", { token: stranger.accessToken });
    expect(theirs.body.items).toEqual([]);
    await expectWrongOwnerRefused({ method: "DELETE", path: `/v1/links/${body.code}` }, owner, stranger);
  });

  it("rate-limits creation per user", async () => {
    const user = await signup();
    let status = 201;
    for (let i = 0; i < 40 && status === 201; i++)
      status = (await api("/v1/links", { token: user.accessToken, body: { path: `/p/${i}` } })).status;
    expect(status).toBe(429);
    // Another user has their own budget.
    const other = await signup();
    expect((await api("/v1/links", { token: other.accessToken, body: { path: "/p" } })).status).toBe(201);
  });
});

describe("the short link's page, by user agent", () => {
  const make = async (body: Record<string, string>) => {
    const user = await signup();
    return (await api("/v1/links", { token: user.accessToken, body: { path: "/posts/7", ...body } })).body;
  };

  it("sends phones to their store when one is set, else to the fallback", async () => {
    const link = await make({ fallbackUrl: "https://example.com/web/7" });
    await api("/v1/admin/config/storeUrl.ios", {
      method: "PUT",
      token: serviceKey(),
      body: { value: "https://apps.apple.com/app/id42" },
    });
    const ios = await open(link.code, UA.ios);
    expect(ios.status).toBe(302);
    expect(ios.headers.get("location")).toBe("https://apps.apple.com/app/id42");
    const android = await open(link.code, UA.android);
    expect(android.status).toBe(302);
    expect(android.headers.get("location")).toBe("https://example.com/web/7");
    const desktop = await open(link.code, UA.desktop);
    expect(desktop.status).toBe(302);
    expect(desktop.headers.get("location")).toBe("https://example.com/web/7");
    await api("/v1/admin/config/storeUrl.ios", { method: "DELETE", token: serviceKey() });
  });

  it("gives preview bots (and desktops without a fallback) Open Graph tags, escaped", async () => {
    const link = await make({
      title: `Party "><script>alert(1)</script>`,
      imageUrl: "https://img.example/a.png?x=1&y=2",
    });
    for (const ua of [UA.bot, UA.desktop]) {
      const res = await open(link.code, ua);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/html/);
      expect(res.text).not.toContain("<script>");
      expect(res.text).toContain(
        '<meta property="og:title" content="Party &quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">',
      );
      expect(res.text).toContain('<meta property="og:image" content="https://img.example/a.png?x=1&amp;y=2">');
      expect(res.text).toContain(`<meta property="og:url" content="https://outpost.test/l/${link.code}">`);
    }
  });

  it("counts opens without a D1 write per open; admins see the counts", async () => {
    const owner = await signup();
    const { body: link } = await api("/v1/links", { token: owner.accessToken, body: { path: "/c" } });
    await flushOpens(primaryDb(env.DB));
    const clicks = () =>
      env.DB.prepare("SELECT clicks FROM short_links WHERE code = ?").bind(link.code).first("clicks");
    await open(link.code, UA.desktop);
    await open(link.code, UA.ios);
    await open(link.code, UA.bot); // a preview is not an open
    expect(await clicks()).toBe(0);
    await flushOpens(primaryDb(env.DB));
    expect(await clicks()).toBe(2);
    const admin = await api("/v1/admin/links", { token: serviceKey() });
    const row = admin.body.items.find((l: { code: string }) => l.code === link.code);
    expect(row).toMatchObject({ clicks: 2, ownerId: owner.id, path: "/c" });
  });

  it("writes the counts once an isolate holds enough of them", async () => {
    const owner = await signup();
    const { body: link } = await api("/v1/links", { token: owner.accessToken, body: { path: "/d" } });
    await flushOpens(primaryDb(env.DB));
    for (let i = 0; i < 20; i++) await api(`/l/${link.code}`, { headers: { "user-agent": UA.desktop }, settle: true });
    const clicks = await env.DB.prepare("SELECT clicks FROM short_links WHERE code = ?")
      .bind(link.code)
      .first("clicks");
    expect(clicks).toBe(20);
  });

  it("answers 404 for an unknown code and 400 for a malformed one", async () => {
    expectProblem(await open("AAAAAAAAAAAAAAAA", UA.ios), 404, "not_found");
    expectProblem(await open("short", UA.ios), 400, "validation_failed");
  });
});

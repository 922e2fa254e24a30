import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { Result } from "hono/router";
import { TrieRouter } from "hono/router/trie-router";
import { describe, expect, it } from "vitest";
import { IslandRouter } from "../../src/lib/route-matcher";
import { app } from "../../src/router";

/** A match as [handler, params] pairs, whichever form the router answers in. */
function pairs<T>(result: Result<T>): [T, Record<string, string>][] {
  const [matches, stash] = result;
  return matches.map(([handler, params]): [T, Record<string, string>] => {
    if (!stash) return [handler, { ...(params as Record<string, string>) }];
    const named: Record<string, string> = {};
    for (const [key, index] of Object.entries(params as Record<string, number>)) named[key] = stash[index] as string;
    return [handler, named];
  });
}

/** A concrete path a route's pattern matches: each parameter becomes "p1", "p2"…, a wildcard "w/x". */
const sample = (pattern: string) => {
  let n = 0;
  return pattern.replace(/:[^/{]+(\{[^}]*\})?\??/g, () => `p${++n}`).replace(/\*/g, "w/x");
};

describe("IslandRouter", () => {
  const routes = app.routes;

  it("matches every path of the API exactly as Hono's TrieRouter does", () => {
    const islands = new IslandRouter<unknown>();
    const trie = new TrieRouter<unknown>();
    for (const r of routes) {
      islands.add(r.method, r.path, r.handler);
      trie.add(r.method, r.path, r.handler);
    }
    const paths = new Set(routes.map((r) => sample(r.path)));
    for (const extra of ["/v1/teams/join", "/v1/auth/oauth/exchange", "/v1/teams/join/", "/nowhere", "/v1/collections"])
      paths.add(extra);
    let compared = 0;
    for (const path of paths)
      for (const method of ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]) {
        const expected = pairs(trie.match(method, path));
        expect(pairs(islands.match(method, path)), `${method} ${path}`).toEqual(expected);
        compared += expected.length;
      }
    expect(compared).toBeGreaterThan(routes.length);
    // The fast matcher took everything but the static paths it cannot hold.
    expect(islands.name).toBe("IslandRouter (RegExpRouter, 2 static paths on TrieRouter)");
  });

  it("is the app's router, and the app's own routes take the fast matcher", async () => {
    const ctx = createExecutionContext();
    // An island (TrieRouter) and a path of the fast matcher, through the whole app.
    const join = await app.request("/v1/teams/join", { method: "POST" }, env, ctx);
    expect(join.status).toBe(401);
    const health = await app.request("/v1/health", {}, env, ctx);
    expect(health.status).toBe(200);
    await waitOnExecutionContext(ctx);
    expect(app.router.name).toBe("IslandRouter (RegExpRouter, 2 static paths on TrieRouter)");
  });

  it("falls back to the TrieRouter for everything when two parameter routes clash", () => {
    const router = new IslandRouter<string>();
    router.add("GET", "/a/:id", "byId");
    router.add("GET", "/a/:name{[a-z]+}/x", "byName");
    router.add("GET", "/a/static", "static");
    expect(pairs(router.match("GET", "/a/42"))).toEqual([["byId", { id: "42" }]]);
    expect(router.name).toBe("IslandRouter (TrieRouter)");
    expect(pairs(router.match("GET", "/a/static"))).toEqual([
      ["byId", { id: "static" }],
      ["static", {}],
    ]);
  });
});

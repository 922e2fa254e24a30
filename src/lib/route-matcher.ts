/**
 * The API's router: Hono's RegExpRouter (one regular expression per method, matched once per
 * request) for every path, with Hono's TrieRouter answering the few static paths RegExpRouter
 * cannot hold.
 *
 * RegExpRouter refuses a static segment where another route of the same method has a parameter
 * (POST /v1/teams/join beside POST /v1/teams/:id/invitations, POST /v1/auth/oauth/exchange beside
 * POST /v1/auth/oauth/:provider/callback); Hono's default SmartRouter then drops it for the
 * TrieRouter on every path, which walks its tree and splits the path on each request. Here such a
 * static path ("island") is left out of the RegExpRouter and answered by a TrieRouter holding every
 * route, so the islands match exactly as before and every other path takes the fast matcher. A
 * path that is not an island cannot be matched by an island's routes (a static route matches its
 * own path alone), so leaving them out changes no other answer. Should the RegExpRouter still refuse
 * the rest (a clash between two parameter routes), the TrieRouter answers everything, as in
 * SmartRouter; `name` says which happened (a test checks that the app's routes take the fast one).
 */
import { type Result, type Router, UnsupportedPathError } from "hono/router";
import { RegExpRouter } from "hono/router/reg-exp-router";
import { TrieRouter } from "hono/router/trie-router";

type Route<T> = [method: string, path: string, handler: T];

const isStatic = (path: string) => !path.includes(":") && !path.includes("*");

/**
 * The static paths RegExpRouter would refuse: those with more characters after a prefix where a
 * route of the same method (or ALL) has its first parameter (not a wildcard). Found per path
 * from the parameter routes' prefixes, so the first request does not pair every route with every other.
 */
function findIslands(routes: readonly Route<unknown>[]): Set<string> {
  const prefixes = new Map<string, Set<string>>();
  for (const [method, path] of routes) {
    const param = path.indexOf("/:");
    if (param < 0) continue;
    const prefix = path.slice(0, param + 1);
    const methods = prefixes.get(prefix) ?? new Set<string>();
    methods.add(method);
    prefixes.set(prefix, methods);
  }
  const islands = new Set<string>();
  for (const [method, path] of routes) {
    if (!isStatic(path)) continue;
    for (let i = path.indexOf("/"); i >= 0 && i < path.length - 1; i = path.indexOf("/", i + 1)) {
      const methods = prefixes.get(path.slice(0, i + 1));
      if (methods && (method === "ALL" || methods.has(method) || methods.has("ALL"))) islands.add(path);
    }
  }
  return islands;
}

export class IslandRouter<T> implements Router<T> {
  name = "IslandRouter";
  /** Every route in order (added until the first match builds the matchers). */
  readonly #routes: Route<T>[] = [];
  #built = false;
  #islands = new Set<string>();
  #fast: RegExpRouter<T> | undefined;
  #all: TrieRouter<T> | undefined;

  add(method: string, path: string, handler: T): void {
    if (this.#built) throw new Error("IslandRouter: routes cannot be added after the first match.");
    this.#routes.push([method, path, handler]);
  }

  match(method: string, path: string): Result<T> {
    if (!this.#built) this.#build();
    if (this.#fast && !this.#islands.has(path)) return this.#fast.match(method, path);
    return this.#trie().match(method, path);
  }

  /** The TrieRouter with every route, built the first time a path needs it. */
  #trie(): TrieRouter<T> {
    if (!this.#all) {
      this.#all = new TrieRouter<T>();
      for (const [method, path, handler] of this.#routes) this.#all.add(method, path, handler);
    }
    return this.#all;
  }

  #build(): void {
    this.#built = true;
    this.#islands = findIslands(this.#routes);
    try {
      const fast = new RegExpRouter<T>();
      for (const [method, path, handler] of this.#routes) if (!this.#islands.has(path)) fast.add(method, path, handler);
      fast.match("GET", "/"); // builds the matchers now, so a refusal shows here
      this.#fast = fast;
    } catch (err) {
      if (!(err instanceof UnsupportedPathError)) throw err;
      this.#islands.clear();
    }
    this.name = this.#fast
      ? `IslandRouter (RegExpRouter, ${this.#islands.size} static paths on TrieRouter)`
      : "IslandRouter (TrieRouter)";
  }
}

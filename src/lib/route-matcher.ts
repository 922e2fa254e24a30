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
 * SmartRouter; `fast` says which happened (a test checks that the app's routes take the fast one).
 */
import { type Result, type Router, UnsupportedPathError } from "hono/router";
import { RegExpRouter } from "hono/router/reg-exp-router";
import { TrieRouter } from "hono/router/trie-router";

type Route<T> = [method: string, path: string, handler: T];

const isStatic = (path: string) => !path.includes(":") && !path.includes("*");

/**
 * Whether RegExpRouter would refuse static `path` next to `dynamic`: both of one method (or ALL),
 * and `dynamic`'s first parameter (not a wildcard) stands where `path` has more characters.
 */
function clashes(path: string, method: string, [dMethod, dynamic]: Route<unknown>): boolean {
  if (method !== dMethod && method !== "ALL" && dMethod !== "ALL") return false;
  const param = dynamic.indexOf("/:");
  if (param < 0) return false;
  const prefix = dynamic.slice(0, param + 1);
  return path.length > prefix.length && path.startsWith(prefix);
}

export class IslandRouter<T> implements Router<T> {
  name = "IslandRouter";
  /** Every route in order, until the first match builds the matchers. */
  #routes: Route<T>[] | undefined = [];
  #islands = new Set<string>();
  #fast: RegExpRouter<T> | undefined;
  #all: TrieRouter<T> | undefined;

  /** Whether the RegExpRouter took the routes (known after the first match). */
  get fast(): boolean {
    return this.#fast !== undefined;
  }

  add(method: string, path: string, handler: T): void {
    if (!this.#routes) throw new Error("IslandRouter: routes cannot be added after the first match.");
    this.#routes.push([method, path, handler]);
  }

  match(method: string, path: string): Result<T> {
    if (this.#routes) this.#build(this.#routes);
    if (this.#fast && !this.#islands.has(path)) return this.#fast.match(method, path);
    return (this.#all as TrieRouter<T>).match(method, path);
  }

  #build(routes: Route<T>[]): void {
    this.#routes = undefined;
    const dynamic = routes.filter(([, path]) => !isStatic(path));
    for (const [method, path] of routes) {
      if (isStatic(path) && dynamic.some((d) => clashes(path, method, d))) this.#islands.add(path);
    }
    try {
      const fast = new RegExpRouter<T>();
      for (const [method, path, handler] of routes) if (!this.#islands.has(path)) fast.add(method, path, handler);
      fast.match("GET", "/"); // builds the matchers now, so a refusal shows here
      this.#fast = fast;
    } catch (err) {
      if (!(err instanceof UnsupportedPathError)) throw err;
      this.#islands.clear();
    }
    if (!this.#fast || this.#islands.size > 0) {
      const all = new TrieRouter<T>();
      for (const [method, path, handler] of routes) all.add(method, path, handler);
      this.#all = all;
    }
    this.name = this.#fast
      ? `IslandRouter (RegExpRouter, ${this.#islands.size} static paths on TrieRouter)`
      : "IslandRouter (TrieRouter)";
  }
}

/**
 * HTTP fuzzing: every route in GET /v1/openapi.json (so new routes are covered without touching
 * this file), plus the tus verbs the document does not list, gets arbitrary bodies, content types,
 * query strings, path params and headers. Properties: never a 5xx; every 4xx is problem+json with a
 * string `code`; a rejected request (4xx) writes nothing to D1 or R2; and no statement breaks a
 * deployed-D1 limit that local SQLite does not enforce (100 bound parameters, 100 KB of SQL).
 * Requests go through `app.fetch` with a D1 binding that records every statement (see
 * test/budget/counting-d1.ts); work left in `waitUntil` is awaited and recorded too.
 *
 * Reproduce a failure: VITE_FUZZ_SEED=<seed printed by fast-check> npx vitest run test/fuzz
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { app } from "../../src/router";
import { countingD1 } from "../budget/counting-d1";
import { makePng } from "../features/files/image-fixtures";
import { api, freshIp, signup, type TestUser } from "../helpers/api";
import { orphanRows, storageMismatches } from "./invariants";
import {
  type BodyCase,
  bodyJunk,
  changed,
  FUZZ_SEED,
  fcParams,
  headerJunk,
  snapshot,
  statusLine,
  stringJunk,
} from "./support";

interface Route {
  method: string;
  path: string;
  pathParams: string[];
  queryParams: string[];
  jsonKeys: string[];
}

// The route list comes from the app's own OpenAPI document.
const doc = (await api("/v1/openapi.json")).body as { paths: Record<string, Record<string, any>> };
const routes: Route[] = [];
for (const [path, ops] of Object.entries(doc.paths)) {
  for (const [method, op] of Object.entries(ops)) {
    if (!["get", "post", "put", "patch", "delete", "head", "options"].includes(method)) continue;
    const params = (op.parameters ?? []) as { in: string; name: string }[];
    routes.push({
      method: method.toUpperCase(),
      path,
      pathParams: params.filter((p) => p.in === "path").map((p) => p.name),
      queryParams: params.filter((p) => p.in === "query").map((p) => p.name),
      jsonKeys: Object.keys(op.requestBody?.content?.["application/json"]?.schema?.properties ?? {}),
    });
  }
}
// tus verbs that OpenAPI does not describe.
if (doc.paths["/v1/uploads/{id}"])
  routes.push({ method: "HEAD", path: "/v1/uploads/{id}", pathParams: ["id"], queryParams: [], jsonKeys: [] });
if (doc.paths["/v1/uploads"])
  routes.push({ method: "OPTIONS", path: "/v1/uploads", pathParams: [], queryParams: [], jsonKeys: [] });

/** Deployed D1 limits per statement (local SQLite allows far more). */
const D1_MAX_PARAMS = 100;
const D1_MAX_SQL_BYTES = 100_000;

// --- fixtures: real ids, so junk also reaches code behind the lookups ---------------------------

let a: TestUser;
let b: TestUser;
const ids: Record<string, string[]> = {};

async function fixture(path: string, body: unknown, token: string, key: string, pick: (b: any) => string | undefined) {
  const res = await api(path, { token, body });
  const id = res.status < 300 ? pick(res.body) : undefined;
  if (id) {
    ids[key] ??= [];
    ids[key].push(id);
  }
}

beforeAll(async () => {
  a = await signup();
  b = await signup();
  await fixture("/v1/collections/notes/records", { title: "fuzz fixture" }, a.accessToken, "notes", (r) => r.id);
  await fixture("/v1/collections/posts/records", { text: "fuzz fixture" }, a.accessToken, "posts", (r) => r.id);
  // A team with team-scoped records, so junk reaches the membership checks behind real ids.
  await fixture("/v1/teams", { name: "fuzz team" }, a.accessToken, "teams", (r) => r.id);
  const teamId = ids.teams?.[0];
  if (teamId) {
    await fixture("/v1/collections/lists/records", { teamId, title: "fuzz" }, a.accessToken, "lists", (r) => r.id);
    await fixture(
      "/v1/collections/items/records",
      { teamId, listId: ids.lists?.[0] ?? "l", text: "fuzz" },
      a.accessToken,
      "items",
      (r) => r.id,
    );
  }
  await fixture("/v1/rooms", { kind: "group", name: "fuzz", memberIds: [b.id] }, a.accessToken, "rooms", (r) => r.id);
  if (ids.rooms)
    await fixture(
      `/v1/rooms/${ids.rooms[0]}/messages`,
      { clientId: "fuzz-fixture", text: "fuzz fixture" },
      b.accessToken,
      "seqs",
      (r) => String(r.seq),
    );
  await fixture(
    "/v1/devices",
    { token: "fuzz-device-token", platform: "android", provider: "fcm" },
    a.accessToken,
    "devices",
    (r) => r.id,
  );
  const file = await api("/v1/files?name=fuzz.txt&visibility=private", {
    token: a.accessToken,
    raw: "fuzz bytes",
    headers: { "content-type": "text/plain" },
  });
  if (file.status === 201) ids.files = [file.body.id];
  // A real image, so `thumb` reaches the Images binding.
  const image = await api("/v1/files?name=fuzz.png&visibility=public", {
    token: a.accessToken,
    raw: await makePng(40, 30),
    headers: { "content-type": "image/png" },
  });
  if (image.status === 201) {
    ids.files ??= [];
    ids.files.push(image.body.id);
  }
  const up = await api("/v1/uploads", {
    method: "POST",
    token: a.accessToken,
    headers: { "tus-resumable": "1.0.0", "upload-length": "100" },
  });
  const loc = up.headers.get("location");
  if (up.status === 201 && loc) ids.uploads = [new URL(loc, "https://outpost.test").pathname.split("/").pop()!];
  const sessions = await api("/v1/auth/sessions", { token: a.accessToken });
  ids.sessions = (sessions.body?.items ?? []).map((s: { id: string }) => s.id);
  ids.users = [a.id, b.id];
});

/** Real ids that fit a route's `{id}` (by the path's resource), and users for `{userId}`. */
function realIds(route: Route, param: string): string[] {
  if (param === "userId") return ids.users ?? [];
  if (param === "seq") return ids.seqs ?? [];
  const seg = route.path.split("/")[2];
  const key = seg === "collections" ? route.path.split("/")[3]! : seg === "auth" ? "sessions" : seg!;
  return ids[key] ?? [];
}

// --- request generators ----------------------------------------------------------------------

type Auth =
  | "none"
  | "userA"
  | "userB"
  | "service"
  | "garbage"
  | "alg-none"
  | "basic"
  | "empty-bearer"
  | "expired-looking";
// About half the requests carry a valid token, so junk reaches the code behind authentication.
const authArb = fc.constantFrom<Auth>(
  "none",
  "userA",
  "userA",
  "userA",
  "userA",
  "userB",
  "userB",
  "service",
  "garbage",
  "alg-none",
  "basic",
  "empty-bearer",
  "expired-looking",
);

function authHeader(auth: Auth, junk: string): string | undefined {
  switch (auth) {
    case "none":
      return undefined;
    case "userA":
      return `Bearer ${a.accessToken}`;
    case "userB":
      return `Bearer ${b.accessToken}`;
    case "service":
      return `Bearer ${env.SERVICE_KEY}`;
    case "garbage":
      return `Bearer ${junk}`;
    case "alg-none": {
      const part = (o: object) => btoa(JSON.stringify(o)).replace(/=+$/, "");
      const claims = { sub: a.id, sid: "x", iss: "outpost", aud: "outpost:access" };
      return `Bearer ${part({ alg: "none", typ: "JWT" })}.${part(claims)}.`;
    }
    case "basic":
      return `Basic ${btoa("user:pass")}`;
    case "empty-bearer":
      return "Bearer ";
    case "expired-looking":
      return `Bearer ${a.accessToken.split(".").slice(0, 2).join(".")}.${"A".repeat(43)}`;
  }
}

/** Swaps the body placeholders for real ids (another user, a file, a room). */
const withRealIds = (body: string) =>
  body
    .replaceAll("@@userA@@", a.id)
    .replaceAll("@@userB@@", b.id)
    .replaceAll("@@file@@", ids.files?.[0] ?? "no-file")
    .replaceAll("@@room@@", ids.rooms?.[0] ?? "no-room");

const safeEncode = (s: string) => {
  try {
    return encodeURIComponent(s);
  } catch {
    return encodeURIComponent(s.replace(/[\uD800-\uDFFF]/g, "?"));
  }
};

/** A path param: a real id (own or another's resource), junk, or a raw (unencoded) nasty string. */
const pathParamArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: "real" as const, value: "" }) },
  { weight: 3, arbitrary: stringJunk.map((value) => ({ kind: "encoded" as const, value })) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom("../", "..", ".", "%", "%zz", "%2e%2e%2f", "a/b", "a?b", "a#b", "%00", "💥")
      .map((value) => ({ kind: "raw" as const, value })),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 100, max: 9000 }).map((n) => ({ kind: "encoded" as const, value: "x".repeat(n) })),
  },
);

const queryArb = (known: string[]) =>
  fc.tuple(
    known.length
      ? fc.record(
          Object.fromEntries(
            known.map((k) => [
              k,
              fc.oneof(
                stringJunk,
                fc.constantFrom(
                  "-1",
                  "0",
                  "1",
                  "20",
                  "201",
                  "1e3",
                  "9".repeat(30),
                  "{}",
                  "[]",
                  '{"title":{"$regex":".*"}}',
                  '{"pinned":true}',
                  '{"ownerId":{"$ne":null}}',
                  '{"nope":1}',
                  "title",
                  "-title",
                  "password_hash",
                  "sm",
                  "sq",
                  "md",
                ),
              ),
            ]),
          ),
          { requiredKeys: [] },
        )
      : fc.constant({}),
    fc.dictionary(fc.string({ maxLength: 10 }), stringJunk, { maxKeys: 3 }),
    fc.constantFrom("", "", "&", "&&==&", "%zz=1", "a=%", "limit=1&limit=2", "where[$gt]=1"),
  );

const headersArb = fc.record(
  {
    "if-match": headerJunk,
    "if-none-match": headerJunk,
    range: fc.oneof(
      headerJunk,
      fc.constantFrom(
        "bytes=0-0",
        "bytes=-1",
        "bytes=5-2",
        "bytes=99999999999-",
        "bytes=0-1,3-4",
        "items=0-1",
        "bytes=-0",
        "bytes=--1",
      ),
    ),
    "idempotency-key": fc.oneof(headerJunk, fc.uuid()),
    "tus-resumable": fc.constantFrom("1.0.0", "0.2.2", "", "junk"),
    "upload-length": fc.oneof(headerJunk, fc.constantFrom("0", "1", "-1", "5368709121", "1e3", "99999999999999999999")),
    "upload-offset": fc.oneof(headerJunk, fc.constantFrom("0", "-1", "1", "100", "99999999999999999999")),
    "upload-metadata": fc.oneof(
      headerJunk,
      fc.constantFrom(
        "filename",
        "filename ZmlsZQ==,filetype aW1hZ2UvcG5n",
        "filename !!!",
        "visibility cHVibGlj",
        ",,,",
        "filename ZmlsZQ==,filename ZmlsZQ==",
      ),
    ),
    "upload-defer-length": fc.constantFrom("1", "0", "x"),
    "upload-concat": fc.constantFrom("partial", "final;/v1/uploads/x", "junk"),
    "x-request-id": headerJunk,
    accept: fc.constantFrom("*/*", "application/json", "text/html", "junk", "image/avif,image/webp", "image/avif;q=x"),
  },
  { requiredKeys: [] },
);

interface Case {
  auth: Auth;
  authJunk: string;
  params: { kind: "real" | "encoded" | "raw"; value: string }[];
  realPick: number;
  query: [Record<string, string>, Record<string, string>, string];
  headers: Record<string, string>;
  body: BodyCase;
}

const caseArb = (route: Route): fc.Arbitrary<Case> =>
  fc.record({
    auth:
      route.method === "DELETE" && route.path === "/v1/me"
        ? fc.constantFrom<Auth>("none", "garbage", "alg-none", "basic", "empty-bearer", "expired-looking", "service")
        : authArb,
    authJunk: headerJunk,
    params: fc.array(pathParamArb, { minLength: route.pathParams.length, maxLength: route.pathParams.length }),
    realPick: fc.nat(),
    query: queryArb(route.queryParams),
    headers: headersArb,
    body:
      route.method === "GET" || route.method === "HEAD"
        ? fc.constant<BodyCase>({ label: "none" })
        : bodyJunk(route.jsonKeys),
  });

function buildRequest(route: Route, c: Case): { url: string; init: RequestInit } {
  let path = route.path;
  route.pathParams.forEach((name, i) => {
    const p = c.params[i]!;
    const real = realIds(route, name);
    const value =
      p.kind === "real" && real.length
        ? safeEncode(real[c.realPick % real.length]!)
        : p.kind === "raw"
          ? p.value
          : safeEncode(p.value || "x");
    path = path.replace(`{${name}}`, value);
  });
  const [known, extra, tail] = c.query;
  const qs = [...Object.entries(known), ...Object.entries(extra)].map(([k, v]) => `${safeEncode(k)}=${safeEncode(v)}`);
  if (tail) qs.push(tail);
  const headers = new Headers(c.headers);
  headers.set("cf-connecting-ip", freshIp());
  const auth = authHeader(c.auth, c.authJunk);
  if (auth) headers.set("authorization", auth);
  if (c.body.contentType !== undefined) headers.set("content-type", c.body.contentType);
  const body = typeof c.body.body === "string" ? withRealIds(c.body.body) : c.body.body;
  return {
    url: `https://outpost.test${path}${qs.length ? `?${qs.join("&")}` : ""}`,
    init: { method: route.method, headers, ...(body !== undefined ? { body } : {}) },
  };
}

/** What a failure prints: enough to replay the request by hand. */
function describeCase(
  route: Route,
  req: { url: string; init: RequestInit },
  status: number,
  text: string,
  ct: string | null,
  extra = "",
) {
  const h = Object.fromEntries(new Headers(req.init.headers).entries());
  if (h.authorization) h.authorization = h.authorization.slice(0, 40) + (h.authorization.length > 40 ? "…" : "");
  const body =
    req.init.body === undefined
      ? "(none)"
      : typeof req.init.body === "string"
        ? JSON.stringify(req.init.body.slice(0, 300))
        : `${(req.init.body as Uint8Array).byteLength} bytes`;
  return (
    `${route.method} ${route.path}\n  url: ${req.url.slice(0, 400)}\n  headers: ${JSON.stringify(h)}\n` +
    `  body: ${body}\n  → ${status} ${ct}\n  ${text.slice(0, 500)}${extra ? `\n  ${extra}` : ""}`
  );
}

/** Status codes each route answered, printed at the end: shows how deep the junk got. */
const statuses = new Map<string, Map<number, number>>();
/** Most bound parameters one statement of the route used during the run. */
const maxParams = new Map<string, number>();
afterAll(() => {
  const lines = [...statuses].map(([r, m]) => statusLine(r, m, `  (max ${maxParams.get(r) ?? 0} D1 params)`));
  console.log(`fuzz statuses per route (seed ${FUZZ_SEED ?? "random"}):\n${lines.join("\n")}`);
});

describe("HTTP fuzz: every documented route", () => {
  it("found the routes in the OpenAPI document", () => {
    expect(routes.length).toBeGreaterThan(20);
    expect(routes.map((r) => `${r.method} ${r.path}`)).toContain("POST /v1/auth/login");
  });

  it("the write check sees writes (so the property below can fail)", async () => {
    const before = await snapshot();
    await signup();
    expect(changed(before, await snapshot())).toEqual(expect.arrayContaining(["d1:users", "d1:sessions"]));
    const mid = await snapshot();
    await env.MEDIA.put(`fuzz-probe-${Date.now()}`, "x");
    expect(changed(mid, await snapshot())).toEqual(["r2:objects"]);
  });

  for (const route of routes) {
    it(`${route.method} ${route.path}: no 5xx, 4xx are problem+json, rejected requests write nothing`, async () => {
      const seen = new Map<number, number>();
      statuses.set(`${route.method} ${route.path}`, seen);
      // Requests run one at a time, so the snapshot taken after one request is the "before" of the next.
      let last: Record<string, string> | null = null;
      await fc.assert(
        fc.asyncProperty(caseArb(route), async (c) => {
          const req = buildRequest(route, c);
          const before = last ?? (await snapshot());
          last = null;
          const { db, counter } = countingD1(env.DB);
          const ctx = createExecutionContext();
          const res = await app.fetch(new Request(req.url, req.init), { ...env, DB: db }, ctx);
          const text = await res.text();
          await waitOnExecutionContext(ctx);
          const after = await snapshot();
          last = after;
          const ct = res.headers.get("content-type");
          seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
          if (res.status >= 500) throw new Error(`5xx:\n${describeCase(route, req, res.status, text, ct)}`);
          const key = `${route.method} ${route.path}`;
          maxParams.set(key, Math.max(maxParams.get(key) ?? 0, ...counter.calls.map((q) => q.params)));
          const overLimit = counter.calls.filter(
            (q) => q.params > D1_MAX_PARAMS || new TextEncoder().encode(q.sql).byteLength > D1_MAX_SQL_BYTES,
          );
          if (overLimit.length)
            throw new Error(
              `statement over a D1 limit (${D1_MAX_PARAMS} parameters, ${D1_MAX_SQL_BYTES} bytes):\n` +
                `${overLimit.map((q) => `${q.params} params: ${q.sql.slice(0, 300)}`).join("\n")}\n` +
                describeCase(route, req, res.status, text, ct),
            );
          if (res.status >= 400) {
            if (!ct?.startsWith("application/problem+json"))
              throw new Error(`4xx without problem+json:\n${describeCase(route, req, res.status, text, ct)}`);
            if (route.method !== "HEAD") {
              let code: unknown;
              try {
                code = (JSON.parse(text) as { code?: unknown }).code;
              } catch {
                code = undefined;
              }
              if (typeof code !== "string")
                throw new Error(`problem without a string code:\n${describeCase(route, req, res.status, text, ct)}`);
            }
            // The Idempotency-Key middleware keeps 4xx answers for replay (by design: a retry gets the
            // same answer); that bookkeeping row is the one write a rejected request may make.
            const diff = changed(before, after).filter(
              (t) => !(t === "d1:idempotency_keys" && c.headers["idempotency-key"] !== undefined),
            );
            if (diff.length)
              throw new Error(
                `rejected request wrote to ${diff.join(", ")}:\n${describeCase(route, req, res.status, text, ct)}`,
              );
          }
        }),
        fcParams(),
      );
      // The property held; the statuses show what the junk reached (visible with --reporter=verbose).
      expect([...seen.values()].reduce((x, y) => x + y, 0)).toBeGreaterThan(0);
    });
  }

  // Last: it runs real DELETEs on the fixtures.
  it("any method on any documented path (including ones it does not serve): no 5xx, 4xx are problem+json", async () => {
    const paths = [...new Set(routes.map((r) => r.path))];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...paths),
        fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PROPFIND"),
        fc.boolean(),
        async (path, method, authed) => {
          const route: Route = {
            method,
            path,
            pathParams: [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!),
            queryParams: [],
            jsonKeys: [],
          };
          // DELETE /v1/me with a real token would delete the fixture user; it is covered above.
          const c: Case = {
            auth: authed && !(method === "DELETE" && path === "/v1/me") ? "userA" : "none",
            authJunk: "",
            params: route.pathParams.map(() => ({ kind: "real" as const, value: "" })),
            realPick: 0,
            query: [{}, {}, ""],
            headers: {},
            body:
              method === "GET" || method === "HEAD"
                ? { label: "none" }
                : { contentType: "application/json", body: "{}", label: "json" },
          };
          const req = buildRequest(route, c);
          const res = await exports.default.fetch(new Request(req.url, req.init));
          const text = await res.text();
          const ct = res.headers.get("content-type");
          if (res.status >= 500) throw new Error(`5xx:\n${describeCase(route, req, res.status, text, ct)}`);
          if (res.status >= 400 && !ct?.startsWith("application/problem+json"))
            throw new Error(`4xx without problem+json:\n${describeCase(route, req, res.status, text, ct)}`);
        },
      ),
      fcParams(),
    );
  });

  it("after all of it: no orphan rows, and storage accounting equal to the stored bytes", async () => {
    expect(await orphanRows()).toEqual([]);
    expect(await storageMismatches()).toEqual([]);
  });
});

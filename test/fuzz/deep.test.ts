/**
 * Deep HTTP fuzzing: bodies and query strings generated from the request schemas of
 * GET /v1/openapi.json (valid ones, and ones with one documented rule broken), sent by a caller
 * allowed to use the route, against real resources made for it, so the 2xx paths run. Properties:
 * never a 5xx; a body that breaks its schema is refused; a refused request writes nothing; and
 * after the run no orphan rows and storage accounting equal to the stored bytes. Each route
 * family must reach a minimum share of 2xx, so a generator drifting back to junk fails here.
 *
 * Reproduce a failure: VITE_FUZZ_SEED=<seed printed by fast-check> npx vitest run test/fuzz/deep.test.ts
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { app } from "../../src/router";
import { loginBody, mfaUser, totp } from "../features/auth/mfa-helpers";
import { SoftAuthenticator } from "../features/auth/passkey-authenticator";
import { makePng } from "../features/files/image-fixtures";
import { countingEnv, runJobs, upload } from "../features/files/image-helpers";
import { api, signup, type TestUser, uniqueEmail } from "../helpers/api";
import { codeIn, mailTo } from "../helpers/outbox";
import { providerIdToken } from "../helpers/tokens";
import { orphanRows, storageMismatches } from "./invariants";
import { type Hints, type JsonSchema, mutatedArb, validArb } from "./schema-arb";
import { changed, FUZZ_SEED, fcParams, snapshot, statusLine } from "./support";

interface Param {
  in: string;
  name: string;
  required?: boolean;
  schema?: JsonSchema;
}
interface Route {
  method: string;
  path: string;
  params: Param[];
  body?: JsonSchema;
  secured: boolean;
}

const docRes = await api("/v1/openapi.json");
const doc = docRes.body as { paths: Record<string, Record<string, any>> };
const routes: Route[] = [];
for (const [path, ops] of Object.entries(doc.paths)) {
  // Sockets need an upgrade (test/fuzz/websocket.test.ts fuzzes them).
  if (path.endsWith("/ws") || path.endsWith("/subscribe")) continue;
  for (const [method, op] of Object.entries(ops)) {
    routes.push({
      method: method.toUpperCase(),
      path,
      params: op.parameters ?? [],
      body: op.requestBody?.content?.["application/json"]?.schema,
      secured: (op.security ?? []).some((s: object) => "bearerAuth" in s),
    });
  }
}
const family = (r: Route) => r.path.split("/")[2]!;

// --- callers and resources ---------------------------------------------------------------------

let a: TestUser;
let b: TestUser;
/** Users others add to rooms, and users others block (kept apart: a block would stop the adds). */
const strangers: TestUser[] = [];
const blockees: TestUser[] = [];
let room = "";
const files: string[] = [];
const notes: string[] = [];
const posts: string[] = [];
/** A team of `a`'s with team-scoped records (lists, items) for the team-scoped collections' routes. */
let team = "";
const lists: string[] = [];
const items: string[] = [];
const comments: string[] = [];

const ok = async (path: string, opts: Parameters<typeof api>[1]) => {
  const res = await api(path, opts);
  if (res.status >= 300) throw new Error(`fixture ${path}: ${res.status} ${res.text}`);
  return res;
};
const uploadFile = async (u: TestUser, bytes: BodyInit = "fuzz bytes", type = "text/plain") =>
  (
    await ok("/v1/files?name=f.txt&visibility=private", {
      token: u.accessToken,
      raw: bytes,
      headers: { "content-type": type },
    })
  ).body.id as string;
const newNote = async (u: TestUser) =>
  (await ok("/v1/collections/notes/records", { token: u.accessToken, body: { title: "fixture" } })).body.id as string;
const newList = async (u: TestUser) =>
  (await ok("/v1/collections/lists/records", { token: u.accessToken, body: { teamId: team, title: "deep" } })).body
    .id as string;
const newItem = async (u: TestUser) =>
  (
    await ok("/v1/collections/items/records", {
      token: u.accessToken,
      body: { teamId: team, listId: lists[0] ?? "l", text: "deep" },
    })
  ).body.id as string;
const newComment = async (u: TestUser) =>
  (await ok("/v1/collections/comments/records", { token: u.accessToken, body: { postId: posts[0], text: "deep" } }))
    .body.id as string;
const newPost = async (u: TestUser) =>
  (await ok("/v1/collections/posts/records", { token: u.accessToken, body: { text: "fixture" } })).body.id as string;
const newUpload = async (u: TestUser, length: number) => {
  const res = await ok("/v1/uploads", {
    method: "POST",
    token: u.accessToken,
    headers: { "tus-resumable": "1.0.0", "upload-length": String(length) },
  });
  return new URL(res.headers.get("location")!, "https://outpost.test").pathname.split("/").pop()!;
};
const postMessage = async (u: TestUser, roomId: string) =>
  (
    await ok(`/v1/rooms/${roomId}/messages`, {
      token: u.accessToken,
      body: { clientId: crypto.randomUUID(), text: "hi" },
    })
  ).body.seq as number;
const sessionIdOf = async (u: TestUser) =>
  (await ok("/v1/auth/sessions", { token: u.accessToken })).body.items[0].id as string;

beforeAll(async () => {
  a = await signup();
  b = await signup();
  for (let i = 0; i < 4; i++) strangers.push(await signup());
  for (let i = 0; i < 3; i++) blockees.push(await signup());
  room = (await ok("/v1/rooms", { token: a.accessToken, body: { kind: "group", name: "deep", memberIds: [b.id] } }))
    .body.id;
  await postMessage(b, room);
  files.push(await uploadFile(a));
  // The image (for thumbnails) goes through a recording queue and its job runs here, so the job's
  // later write cannot land in the middle of a case and look like a refused request's.
  const rec = countingEnv();
  files.push((await upload(rec.env, a.accessToken, await makePng(40, 30), "image/png", "private")).id);
  await runJobs(env, rec.jobs);
  notes.push(await newNote(a), await newNote(a));
  posts.push(await newPost(a), await newPost(a));
  team = (await ok("/v1/teams", { token: a.accessToken, body: { name: "deep" } })).body.id;
  lists.push(await newList(a), await newList(a));
  items.push(await newItem(a), await newItem(a));
  comments.push(await newComment(a), await newComment(a));
});

/** Who calls a route: the fixture owner, the service key (admin routes), or a new account per case. */
type Actor = "a" | "service" | "fresh" | "anonymous";
function actorOf(r: Route): Actor {
  if (r.path.startsWith("/v1/admin/")) return "service";
  if (r.path === "/v1/auth/link") return "anonymous";
  // Routes that end the caller's session or account, or count attempts per account, get their own.
  if (r.path.startsWith("/v1/auth/") && r.path !== "/v1/auth/sessions") return "fresh";
  if (r.method === "DELETE" && r.path === "/v1/me") return "fresh";
  // Rooms and messages are rate-limited per user: a case that makes its own gets its own caller.
  if (r.method === "DELETE" && r.path.startsWith("/v1/rooms/{id}/")) return "fresh";
  if (r.path === "/v1/rooms/{id}/members") return "fresh";
  // Joining a team needs a verified email matching a fresh invitation.
  if (r.path === "/v1/teams/join") return "fresh";
  // App routes are rate-limited per user: a member of the fixture team of its own per case.
  if (r.path.startsWith("/v1/app/")) return "fresh";
  return "a";
}

interface Me {
  user: TestUser;
  /** Values swapped in for placeholders in the body and path. */
  values: Record<string, string | number>;
  headers: Record<string, string>;
  raw?: { body: Uint8Array; type: string };
}

const bytes = (n: number) => crypto.getRandomValues(new Uint8Array(n));

/** Makes what the case needs: its caller, and fresh resources for routes that consume theirs. */
async function prepare(r: Route, pick: number): Promise<Me> {
  const kind = actorOf(r);
  let user = a;
  if (kind === "fresh") user = await signup();
  if (kind === "anonymous") {
    const res = await ok("/v1/auth/anonymous", { body: {} });
    user = {
      id: res.body.user.id,
      email: "",
      password: "",
      accessToken: res.body.session.accessToken,
      refreshToken: "",
    };
  }
  const values: Record<string, string | number> = {
    email: user.email,
    password: user.password,
    refresh: user.refreshToken,
    userB: b.id,
    stranger: strangers[pick % strangers.length]!.id,
    blockee: blockees[pick % blockees.length]!.id,
    file: files[pick % files.length]!,
    room,
    note: notes[pick % notes.length]!,
    post: posts[pick % posts.length]!,
    list: lists[pick % lists.length]!,
    item: items[pick % items.length]!,
    comment: comments[pick % comments.length]!,
    team,
    seq: 1,
    id: "",
  };
  const headers: Record<string, string> = {};
  let raw: Me["raw"];
  const p = `${r.method} ${r.path}`;
  if (p === "DELETE /v1/auth/sessions/{id}") values.id = await sessionIdOf(user);
  if (p === "POST /v1/auth/password-reset/confirm") {
    await api("/v1/auth/password-reset", { body: { email: user.email }, settle: true });
    values.mailcode = codeIn((await mailTo(user.email)).text);
  }
  if (p === "POST /v1/auth/verify-email/confirm") {
    await api("/v1/auth/verify-email", { token: user.accessToken, body: {}, settle: true });
    values.mailcode = codeIn((await mailTo(user.email)).text);
  }
  if (p === "POST /v1/auth/idtoken")
    values.idtoken = await providerIdToken("google", {
      sub: `g-${crypto.randomUUID()}`,
      aud: "web-client-id",
      ...(pick % 2 ? { nonce: "fuzz-nonce" } : {}),
    });
  if (p === "POST /v1/app-check/apple" || p === "POST /v1/app-check/android")
    values.challenge = (await ok("/v1/app-check/challenge", { body: {} })).body.challenge;
  if (p === "DELETE /v1/admin/app-check/debug-tokens/{id}")
    values.id = (
      await ok("/v1/admin/app-check/debug-tokens", { token: env.SERVICE_KEY, body: { name: "fuzz" } })
    ).body.id;
  if (p === "POST /v1/app-check/debug")
    values.debugtoken = (
      await ok("/v1/admin/app-check/debug-tokens", { token: env.SERVICE_KEY, body: { name: "fuzz" } })
    ).body.debugToken;
  if (p === "POST /v1/auth/otp/verify") {
    values.otpemail = uniqueEmail("fuzz-otp");
    await api("/v1/auth/otp", { body: { email: values.otpemail }, settle: true });
    const text = (await mailTo(values.otpemail)).text;
    values.otpcode = /: (\d{6})\n/.exec(text)![1]!;
    values.otptoken = /token=([\w-]+)/.exec(text)![1]!;
  }
  if (r.path.startsWith("/v1/auth/oauth/{provider}")) values.provider = "google";
  if (r.path === "/v1/auth/passkeys/{id}") values.id = await passkeyOf(user);
  // Second factors: a pending enrollment and its current code; a sign-in waiting for its code.
  if (p === "POST /v1/auth/mfa/totp/confirm") {
    const { secret } = (await ok("/v1/auth/mfa/totp", { token: user.accessToken, body: {} })).body;
    values.mfacode = await totp(secret);
  }
  if (p === "POST /v1/auth/mfa/verify") {
    const m = await mfaUser();
    values.mfatoken = (await loginBody(m)).mfaToken;
    values.mfacode = m.recoveryCodes[pick % m.recoveryCodes.length]!;
  }
  if (p.startsWith("GET /v1/files/{id}") || p.startsWith("POST /v1/files/{id}"))
    values.id = files[pick % files.length]!;
  if (p === "DELETE /v1/files/{id}") values.id = await uploadFile(a);
  if (p === "POST /v1/files") raw = { body: bytes(1 + (pick % 3000)), type: "application/octet-stream" };
  if (r.path === "/v1/uploads/{id}") {
    const length = 1 + (pick % 2000);
    values.id = await newUpload(a, length);
    headers["tus-resumable"] = "1.0.0";
    if (r.method === "PATCH") {
      headers["upload-offset"] = "0";
      raw = { body: bytes(length), type: "application/offset+octet-stream" };
    }
  }
  if (p === "POST /v1/uploads") {
    headers["tus-resumable"] = "1.0.0";
    headers["upload-length"] = String(1 + (pick % 5000));
  }
  for (const [c, list, make] of [
    ["notes", notes, newNote],
    ["posts", posts, newPost],
    ["lists", lists, newList],
    ["items", items, newItem],
    ["comments", comments, newComment],
  ] as const) {
    if (r.path === `/v1/collections/${c}/records/{id}`)
      values.id = r.method === "DELETE" ? await make(a) : list[pick % list.length]!;
  }
  if (r.path.startsWith("/v1/rooms/{id}")) values.id = room;
  if (p === "POST /v1/rooms/{id}/members") {
    const body = { kind: "group", name: "x", memberIds: [b.id] };
    values.id = (await ok("/v1/rooms", { token: user.accessToken, body })).body.id;
  }
  if (r.method === "DELETE" && r.path.startsWith("/v1/rooms/{id}/")) {
    // A room of its own, so removing someone never empties the shared one.
    const s = strangers[pick % strangers.length]!;
    const body = { kind: "group", name: "x", memberIds: [s.id] };
    values.id = (await ok("/v1/rooms", { token: user.accessToken, body })).body.id;
    values.userId = pick % 2 ? s.id : user.id;
    values.seq = await postMessage(user, String(values.id));
  }
  if (p === "DELETE /v1/blocks/{userId}") {
    values.userId = blockees[pick % blockees.length]!.id;
    await ok("/v1/blocks", { token: a.accessToken, body: { userId: values.userId } });
  }
  if (p === "DELETE /v1/devices/{id}")
    values.id = (
      await ok("/v1/devices", {
        token: a.accessToken,
        body: { token: `fuzz-${crypto.randomUUID()}`, platform: "android", provider: "fcm" },
      })
    ).body.id;
  if (r.path.startsWith("/v1/teams/{id}")) {
    // A team of its own per case (hand-overs, removals and deletion consume theirs), with a member to act on.
    values.id = (await ok("/v1/teams", { token: a.accessToken, body: { name: "fuzz" } })).body.id;
    values.userId = strangers[pick % strangers.length]!.id;
    await env.DB.prepare("INSERT INTO team_members (team_id, user_id, role, joined_at) VALUES (?, ?, 'member', ?)")
      .bind(values.id, values.userId, new Date().toISOString())
      .run();
    if (r.path === "/v1/teams/{id}/invitations/{invitationId}")
      values.invitationId = (
        await ok(`/v1/teams/${values.id}/invitations`, { token: a.accessToken, body: { email: "fuzz@example.com" } })
      ).body.id;
  }
  if (p === "POST /v1/teams/join") {
    await env.DB.prepare("UPDATE users SET email_verified = 1 WHERE id = ?").bind(user.id).run();
    const team = (await ok("/v1/teams", { token: a.accessToken, body: { name: "fuzz" } })).body.id;
    await ok(`/v1/teams/${team}/invitations`, { token: a.accessToken, body: { email: user.email } });
    values.teamtoken = codeIn((await mailTo(user.email)).text);
  }
  if (r.path === "/v1/links/{code}" || r.path === "/l/{code}") {
    // Straight into D1: POST /v1/links is rate-limited per user, and its own cases spend a's budget.
    values.code = `fuzz${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    await env.DB.prepare("INSERT INTO short_links (code, owner_id, path, created_at) VALUES (?, ?, '/fuzz', ?)")
      .bind(values.code, a.id, new Date().toISOString())
      .run();
  }
  // A key that takes only one kind of value (a version), so a value of another type is refused.
  if (r.path === "/v1/admin/config/{key}") values.key = "minVersion.ios";
  if (p === "POST /v1/app/lists/{id}/clear-done") {
    // A list of its own with a done item (clearing the shared lists would delete the fixture items).
    values.id = await newList(a);
    const body = { teamId: team, listId: values.id, text: "done", done: true };
    await ok("/v1/collections/items/records", { token: a.accessToken, body });
    await env.DB.prepare("INSERT INTO team_members (team_id, user_id, role, joined_at) VALUES (?, ?, 'member', ?)")
      .bind(team, user.id, new Date().toISOString())
      .run();
  }
  if (r.path === "/v1/admin/users/{id}") values.id = r.method === "GET" ? b.id : (await signup()).id;
  values.hookurl = `${env.STANDIN_URL}/webhooks/fuzz`;
  if (r.path.startsWith("/v1/admin/webhooks/{id}")) {
    const body = { url: values.hookurl, events: ["lists.delete"] };
    values.id = (await ok("/v1/admin/webhooks", { token: env.SERVICE_KEY, body })).body.id;
    if (r.path.endsWith("/redeliver")) values.deliveryId = await parkedDelivery(String(values.id));
  }
  return { user, values, headers, raw };
}

/** A passkey of `user` (registered by a software authenticator; one of theirs once they hold a few): its id. */
async function passkeyOf(user: TestUser): Promise<string> {
  const held = (await ok("/v1/auth/passkeys", { token: user.accessToken })).body.items as { id: string }[];
  if (held.length >= 5) return held[0]!.id;
  const options = (await ok("/v1/auth/passkeys/register/options", { token: user.accessToken, body: {} })).body;
  const credential = await new SoftAuthenticator().create(options);
  return (await ok("/v1/auth/passkeys/register", { token: user.accessToken, body: { credential } })).body.id;
}

/** A failed delivery of webhook `id` (an event and its parked run, as the events pipeline leaves them). */
async function parkedDelivery(id: string): Promise<string> {
  const at = new Date().toISOString();
  const ev = await env.DB.prepare(
    "INSERT INTO events (event, record_id, record, at, dispatched) VALUES ('lists.delete', ?, '{}', ?, 1) RETURNING seq",
  )
    .bind(crypto.randomUUID(), at)
    .first<{ seq: number }>();
  const run = crypto.randomUUID();
  await env.DB.prepare(
    "INSERT INTO event_runs (id, seq, target, status, attempts, next_attempt_at, created_at) VALUES (?, ?, ?, 'parked', 1, ?, ?)",
  )
    .bind(run, ev!.seq, id, at, at)
    .run();
  return run;
}

/** Placeholder values per body field name (route-specific ones first). */
function hintsFor(r: Route): Hints {
  const ph = (name: string) => fc.constant(`@@${name}@@`);
  const h: Hints = {
    userId: ph(r.path === "/v1/blocks" ? "blockee" : "stranger"),
    memberIds: fc.constantFrom(["@@userB@@"], ["@@stranger@@"], ["@@userB@@", "@@stranger@@"]),
    userIds: fc.constant(["@@userB@@"]),
    fileId: ph("file"),
    avatarFileId: ph("file"),
    imageFileId: ph("file"),
    seq: ph("seq"),
    refreshToken: ph("refresh"),
    idToken: ph("idtoken"),
    provider: fc.constant("google"),
    nonce: fc.constant("fuzz-nonce"),
    currentPassword: ph("password"),
    teamId: ph("team"),
    listId: ph("list"),
    postId: ph("post"),
    replyTo: fc.constant(null),
    fromNoteId: ph("note"),
  };
  if (r.path === "/v1/auth/login" || r.path === "/v1/auth/password-reset") {
    h.email = ph("email");
    h.password = ph("password");
  }
  if (r.path.endsWith("/confirm")) h.token = ph("mailcode");
  if (r.path === "/v1/auth/idtoken") h.authorizationCode = fc.constant(undefined); // Apple's only: mostly left out
  if (r.path === "/v1/auth/otp/verify")
    Object.assign(h, { email: ph("otpemail"), code: ph("otpcode"), token: ph("otptoken") });
  if (r.path === "/v1/auth/oauth/{provider}/start") h.redirectUri = fc.constant("https://app.example.com/cb");
  if (r.path === "/v1/auth/mfa/totp/confirm" || r.path === "/v1/auth/mfa/verify")
    Object.assign(h, { code: ph("mfacode"), mfaToken: ph("mfatoken") });
  // Now and then a post the app's before hook refuses (422 content_refused): refused, nothing written.
  if (r.path.startsWith("/v1/collections/posts/"))
    h.text = fc.oneof(
      { weight: 5, arbitrary: fc.string({ minLength: 1, maxLength: 40 }).filter((t) => t.trim() !== "") },
      { weight: 1, arbitrary: fc.constant("see http://spam.example/offer") },
    );
  if (r.path === "/v1/teams/join") h.token = ph("teamtoken");
  if (r.path === "/v1/admin/config/{key}") h.value = fc.constant("1.0.0");
  // A live challenge, so junk attestations and integrity tokens reach the parsers behind it.
  h.challenge = ph("challenge");
  h.debugToken = ph("debugtoken");
  if (r.path === "/v1/batch") h.operations = batchOps();
  if (r.path === "/v1/admin/webhooks") {
    h.url = ph("hookurl");
    h.events = fc.constantFrom(["lists.delete"], ["items.delete", "lists.delete"]);
  }
  if (r.path === "/v1/devices") {
    h.provider = fc.constant("fcm");
    h.token = fc.uuid().map((u) => `fcm-${u}`);
  }
  return h;
}

/** Batch operations built from the collections' own documented record schemas. */
function batchOps(): fc.Arbitrary<unknown[]> {
  const schemaOf = (c: string, m: string) =>
    doc.paths[`/v1/collections/${c}/records${m === "post" ? "" : "/{id}"}`]![m].requestBody.content["application/json"]
      .schema as JsonSchema;
  const without = (s: JsonSchema, key: string) => {
    const { [key]: _, ...properties } = s.properties ?? {};
    return { ...s, properties };
  };
  // Team-scoped records name the fixture team; references name fixture records, always: with three
  // operations each drawing junk now and then, a batch would be refused as often as not (a junk
  // reference's 400 is the record routes' to reach).
  const ctx = {
    root: doc,
    hintOnly: ["teamId", "listId", "postId", "replyTo", "fromNoteId"],
    hints: {
      teamId: fc.constant("@@team@@"),
      listId: fc.constant("@@list@@"),
      postId: fc.constant("@@post@@"),
      replyTo: fc.constant(null),
      fromNoteId: fc.constant("@@note@@"),
    },
  };
  const one = fc.constantFrom("notes", "posts", "lists", "items", "comments").chain((c) =>
    fc.oneof(
      validArb(without(schemaOf(c, "post"), "id"), ctx).map((data) => ({ op: "create", collection: c, data })),
      validArb(schemaOf(c, "patch"), ctx).map((data) => ({
        op: "update",
        collection: c,
        id: `@@${c.slice(0, -1)}@@`,
        data,
      })),
      validArb(schemaOf(c, "put"), ctx).map((data) => ({
        op: "replace",
        collection: c,
        id: `@@${c.slice(0, -1)}@@`,
        data,
      })),
    ),
  );
  return fc.array(one, { minLength: 1, maxLength: 3 });
}

type BodyCase = { kind: "none" } | { kind: "valid"; value: unknown } | { kind: "mutated"; value: unknown; how: string };

interface Case {
  body: BodyCase;
  query: Record<string, unknown>;
  pick: number;
}

function caseArb(r: Route): fc.Arbitrary<Case> {
  // Batch operations come only from the collections' schemas: the document's own `data` is free-form.
  const ctx = { root: doc, hints: hintsFor(r), hintOnly: ["operations"] };
  let body: fc.Arbitrary<BodyCase> = fc.constant({ kind: "none" });
  if (r.body) {
    const valid = validArb(r.body, ctx).map((value): BodyCase => ({ kind: "valid", value }));
    const bad = mutatedArb(r.body, ctx)?.map((m): BodyCase => ({ kind: "mutated", ...m }));
    body = bad ? fc.oneof({ weight: 3, arbitrary: valid }, { weight: 1, arbitrary: bad }) : valid;
  }
  // Optional query parameters now and then; cursors and signatures are opaque, so never generated.
  const opaque = new Set(["cursor", "exp", "sig", "token", "ticket", "where", "since"]);
  const query = Object.fromEntries(
    r.params
      .filter((q) => q.in === "query" && !opaque.has(q.name))
      .map((q) => {
        // A hinted name (teamId) names a real thing in the query too.
        const arb = ctx.hints[q.name] ?? validArb(q.schema ?? {}, ctx);
        return [q.name, q.required ? arb : fc.option(arb, { freq: 3 })];
      }),
  );
  return fc.record({ body, query: fc.record(query), pick: fc.nat(1000) });
}

/** Swaps placeholders for real values (a quoted `"@@seq@@"` becomes the number). */
function fill(text: string, values: Record<string, string | number>): string {
  return text.replace(/"@@(\w+)@@"|@@(\w+)@@/g, (_m, quoted: string | undefined, bare: string | undefined) => {
    const v = values[(quoted ?? bare)!];
    if (v === undefined) return _m;
    return quoted ? JSON.stringify(v) : String(v);
  });
}

function buildRequest(r: Route, c: Case, me: Me): Request {
  let path = r.path;
  for (const p of r.params.filter((q) => q.in === "path"))
    path = path.replace(`{${p.name}}`, encodeURIComponent(String(me.values[p.name] ?? me.values.id)));
  const qs = Object.entries(c.query)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${k}=${encodeURIComponent(fill(String(v), me.values))}`);
  const url = `https://outpost.test${path}${qs.length ? `?${qs.join("&")}` : ""}`;
  const headers = new Headers(me.headers);
  headers.set("cf-connecting-ip", `10.200.${c.pick % 250}.${Math.floor(Math.random() * 250)}`);
  if (r.secured)
    headers.set("authorization", `Bearer ${actorOf(r) === "service" ? env.SERVICE_KEY : me.user.accessToken}`);
  let body: BodyInit | undefined;
  if (me.raw) {
    headers.set("content-type", me.raw.type);
    body = me.raw.body;
  } else if (c.body.kind !== "none") {
    headers.set("content-type", "application/json");
    body = fill(JSON.stringify(c.body.value), me.values);
  }
  return new Request(url, { method: r.method, headers, body });
}

// --- the run -----------------------------------------------------------------------------------

const statuses = new Map<string, Map<number, number>>();
const tally = (key: string, status: number) => {
  const m = statuses.get(key) ?? new Map<number, number>();
  m.set(status, (m.get(status) ?? 0) + 1);
  statuses.set(key, m);
};
const share2xx = (m: Map<number, number>) => {
  let ok2 = 0;
  let all = 0;
  for (const [s, n] of m) {
    all += n;
    if (s >= 200 && s < 300) ok2 += n;
  }
  return { ok2, all };
};

afterAll(() => {
  const lines = [...statuses].map(([r, m]) => statusLine(r, m));
  console.log(`deep fuzz statuses per route (seed ${FUZZ_SEED ?? "random"}):\n${lines.join("\n")}`);
});

/** Routes whose 2xx needs a proof only a device (or Turnstile) makes: the fuzz reaches their refusals only. */
const DEVICE_PROOFS = new Set([
  "POST /v1/app-check/apple",
  "POST /v1/app-check/android",
  "POST /v1/app-check/web",
  // A WebAuthn credential is signed by the authenticator over the server's challenge.
  "POST /v1/auth/passkeys/register",
  "POST /v1/auth/passkeys/login",
]);

/** Least share of 2xx answers per route family: valid bodies by an allowed caller mostly succeed. */
const MIN_2XX_SHARE = 0.5;

describe("deep HTTP fuzz: schema-valid and one-rule-broken requests", () => {
  it("read the request schemas from the OpenAPI document", () => {
    expect(docRes.status).toBe(200);
    expect(routes.filter((r) => r.body).length).toBeGreaterThan(25);
  });

  it("the end-of-run checks see an orphan row and unaccounted bytes (so they can fail)", async () => {
    const id = crypto.randomUUID();
    const at = new Date().toISOString();
    await env.DB.prepare(
      "INSERT INTO app_notes (id, owner_id, created_at, updated_at, version, title) VALUES (?, ?, ?, ?, 1, 'x')",
    )
      .bind(id, crypto.randomUUID(), at, at)
      .run();
    expect((await orphanRows()).join("\n")).toContain("app_notes.owner_id → users");
    await env.DB.prepare("DELETE FROM app_notes WHERE id = ?").bind(id).run();
    const fileRow = await env.DB.prepare("SELECT id, object_key FROM files WHERE status = 'ready' LIMIT 1").first<{
      id: string;
      object_key: string;
    }>();
    const original = await env.MEDIA.get(fileRow!.object_key);
    const bytes = await original!.arrayBuffer();
    await env.MEDIA.put(fileRow!.object_key, new Uint8Array([...new Uint8Array(bytes), 1]));
    await env.MEDIA.put(`f/${id}`, "nobody's bytes");
    const found = (await storageMismatches()).join("\n");
    expect(found).toContain("quota counts");
    expect(found).toContain(`f/${id}`);
    await env.MEDIA.put(fileRow!.object_key, bytes, { httpMetadata: original!.httpMetadata });
    await env.MEDIA.delete(`f/${id}`);
    expect(await orphanRows()).toEqual([]);
    expect(await storageMismatches()).toEqual([]);
  });

  for (const r of routes) {
    const key = `${r.method} ${r.path}`;
    it(`${key}: no 5xx, broken bodies refused, refused requests write nothing`, async () => {
      await fc.assert(
        fc.asyncProperty(caseArb(r), async (c) => {
          const me = await prepare(r, c.pick);
          const req = buildRequest(r, c, me);
          const sent = c.body.kind === "none" ? "(none)" : fill(JSON.stringify(c.body.value), me.values).slice(0, 300);
          const shown = () => `${key} ${req.url}\n  body ${sent}`;
          const before = await snapshot();
          const ctx = createExecutionContext();
          const res = await app.fetch(req, env, ctx);
          const text = await res.text();
          await waitOnExecutionContext(ctx);
          tally(key, res.status);
          if (res.status >= 500) throw new Error(`5xx: ${shown()}\n  → ${res.status} ${text.slice(0, 300)}`);
          if (c.body.kind === "mutated" && res.status < 400)
            throw new Error(
              `a body with ${c.body.how} was accepted: ${shown()}\n  → ${res.status} ${text.slice(0, 300)}`,
            );
          if (res.status >= 400) {
            if (!res.headers.get("content-type")?.startsWith("application/problem+json"))
              throw new Error(`4xx without problem+json: ${shown()}`);
            const diff = changed(before, await snapshot());
            if (diff.length)
              throw new Error(`refused (${res.status}) but wrote ${diff.join(", ")}: ${shown()}\n  ${text}`);
          }
        }),
        fcParams(),
      );
    });
  }

  it("reached the 2xx paths: every route family answers 2xx to a fair share of requests", () => {
    const families = new Map<string, Map<number, number>>();
    for (const [key, m] of statuses) {
      if (DEVICE_PROOFS.has(key)) continue;
      const fam = family({ method: "", path: key.split(" ")[1]!, params: [], secured: false });
      const f = families.get(fam) ?? new Map<number, number>();
      for (const [s, n] of m) f.set(s, (f.get(s) ?? 0) + n);
      families.set(fam, f);
    }
    const low = [...families]
      .map(([fam, m]) => ({ fam, ...share2xx(m) }))
      .filter((f) => f.ok2 < MIN_2XX_SHARE * f.all)
      .map((f) => `${f.fam}: ${f.ok2} of ${f.all}`);
    expect(families.size).toBeGreaterThan(8);
    expect(low).toEqual([]);
  });

  it("left no orphan rows", async () => {
    expect(await orphanRows()).toEqual([]);
  });

  it("charges each user for exactly the bytes stored for their files", async () => {
    expect(await storageMismatches()).toEqual([]);
  });
});

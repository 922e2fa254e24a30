// `npm run capacity`: what the example app stores in D1, measured. Starts the deployed bundle on
// workerd (as the bench does), creates users and their data through the public API step by step,
// and reads the D1 database size (`meta.size_after`, SQLite pages: rows plus every index) after
// each step. Prints bytes per user, session, record, file, device, room and message; these are
// the figures behind docs/scaling.md. Knob: CAPACITY_USERS (default 300).
import { buildWorker, readWranglerConfig, startOutpost } from "./runtime.mjs";

const USERS = Number(process.env.CAPACITY_USERS ?? 300);
const NOTES = 10;
const POSTS = 5;
const FILES = 2;
const ROOMS = Math.floor(USERS / 2);
const MESSAGES = 10;

const script = buildWorker();
const config = await readWranglerConfig();
const rt = await startOutpost(script, config);
const db = await rt.mf.getD1Database("DB");
let ip = 0;

async function call(method, path, { token, body, raw, headers = {} } = {}) {
  const h = { "cf-connecting-ip": `198.51.100.${(ip++ % 250) + 1}`, ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  if (body !== undefined) h["content-type"] = "application/json";
  const res = await fetch(`${rt.url}${path}`, {
    method,
    headers: h,
    body: body !== undefined ? JSON.stringify(body) : raw,
  });
  const json = await res.json().catch(() => null);
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function pool(n, concurrency, fn) {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, concurrency) }, async () => {
      while (i < n) await fn(i++);
    }),
  );
}

const size = async () => (await db.prepare("SELECT 1").run()).meta.size_after;
const rows = [];
let last = await size();
const baseline = last;
async function step(what, count, fn) {
  await fn();
  const now = await size();
  rows.push({ what, count, bytes: now - last, per: (now - last) / count });
  last = now;
}

const text = (n) => "lorem ipsum dolor sit amet ".repeat(Math.ceil(n / 27)).slice(0, n);
const users = [];
await step("user (account, first session, its refresh token)", USERS, () =>
  pool(USERS, 4, async (i) => {
    const r = await call("POST", "/v1/auth/signup", {
      body: { email: `cap${i}@example.com`, password: "capacity password 1", name: `User ${i}` },
    });
    users.push({ id: r.user.id, token: r.session.accessToken, refresh: r.session.refreshToken });
  }),
);
await step("extra session (a second device's login)", USERS, () =>
  pool(USERS, 4, (i) =>
    call("POST", "/v1/auth/login", { body: { email: `cap${i}@example.com`, password: "capacity password 1" } }),
  ),
);
await step("token refresh (rotated hash kept while the session lives)", USERS, () =>
  pool(USERS, 4, async (i) => {
    users[i].refresh = (
      await call("POST", "/v1/auth/refresh", { body: { refreshToken: users[i].refresh } })
    ).session.refreshToken;
  }),
);
await step(`note (200-character body, 2 tags; record + change log + indexes)`, USERS * NOTES, () =>
  pool(USERS * NOTES, 4, (k) =>
    call("POST", "/v1/collections/notes/records", {
      token: users[k % USERS].token,
      body: { title: `Note ${k}`, body: text(200), tags: ["work", "ideas"] },
    }),
  ),
);
await step("post (100-character text)", USERS * POSTS, () =>
  pool(USERS * POSTS, 4, (k) =>
    call("POST", "/v1/collections/posts/records", {
      token: users[k % USERS].token,
      body: { text: text(100), imageFileId: null },
    }),
  ),
);
await step("file (metadata row; bytes live in R2)", USERS * FILES, () =>
  pool(USERS * FILES, 4, (k) =>
    call("POST", `/v1/files?name=photo-${k}.jpg&visibility=private`, {
      token: users[k % USERS].token,
      raw: new Uint8Array(1024),
      headers: { "content-type": "application/octet-stream" },
    }),
  ),
);
await step("push device", USERS, () =>
  pool(USERS, 4, (i) =>
    call("POST", "/v1/devices", {
      token: users[i].token,
      body: { token: `ExponentPushToken[cap-${i}-${"x".repeat(22)}]`, platform: "ios", provider: "expo" },
    }),
  ),
);
const rooms = [];
await step("direct room (room row + 2 memberships)", ROOMS, () =>
  pool(ROOMS, 4, async (k) => {
    const r = await call("POST", "/v1/rooms", {
      token: users[2 * k].token,
      body: { kind: "direct", memberIds: [users[2 * k + 1].id] },
    });
    rooms.push({ id: r.id, token: users[2 * k].token });
  }),
);
await step("chat message (D1 mirror only: the log lives in the room's Durable Object)", ROOMS * MESSAGES, () =>
  pool(ROOMS * MESSAGES, 4, (k) =>
    call("POST", `/v1/rooms/${rooms[k % ROOMS].id}/messages`, {
      token: rooms[k % ROOMS].token,
      body: { clientId: `cap-${k}`, text: text(80) },
    }),
  ),
);
await rt.dispose();

const fmt = (n, d = 0) => Number(n).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
console.log(
  `D1 size: ${fmt(baseline / 1024)} KiB empty (schema) → ` +
    `${fmt(last / 1024)} KiB after ${fmt(USERS)} users with their data\n`,
);
console.log("| what | count | D1 bytes added | bytes each |\n| --- | --- | --- | --- |");
for (const r of rows) console.log(`| ${r.what} | ${fmt(r.count)} | ${fmt(r.bytes)} | ${fmt(r.per)} |`);
const perUser = (last - baseline) / USERS;
console.log(
  `\nper user with the data above (${NOTES} notes, ${POSTS} posts, ${FILES} files, 1 device, 2 sessions, ` +
    `one direct room, ${MESSAGES / 2} messages): ${fmt(perUser)} bytes`,
);
console.log(
  `→ one 10 GB D1 database holds about ${fmt(10e9 / perUser)} such users (500 MB free plan: ${fmt(500e6 / perUser)})`,
);
process.exit(0);

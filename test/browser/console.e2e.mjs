// The admin console in a real browser (issue 17): headless Chromium driven by playwright-core
// against the Worker started locally (test/browser/server.mjs: the deploy bundle on workerd, with
// its static assets). Runs under Node's test runner: `npm run test:browser`.
//
// The browser is Debian's `chromium` (`.ci/run` installs it when missing), never a download:
// playwright-core ships no browser. With OUTPOST_SCREENSHOTS=<dir> (`npm run screenshots`) the
// run also saves the README's screenshots there.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium } from "playwright-core";
import { root, SECRETS, startWorker } from "./server.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = process.env.OUTPOST_SCREENSHOTS ? path.resolve(root, process.env.OUTPOST_SCREENSHOTS) : null;
const PASSWORD = "correct horse battery staple";

let worker;
let context;
let page;
let profile;
const people = {};
let dialogs = 0;
const cspViolations = [];

/** Calls the API from Node (setup and checks: what an app would see). */
async function call(method, p, { token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const send = () =>
    fetch(`${worker.url}${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  // A CLI run (spawnSync) blocks this process for seconds, and the Worker may close the idle
  // keep-alive socket meanwhile: that request never reached it, so send it again once.
  const res = await send().catch((e) => {
    if (e?.cause?.code === "UND_ERR_SOCKET") return send();
    throw e;
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function signupUser(email, name) {
  const res = await call("POST", "/v1/auth/signup", { body: { email, password: PASSWORD, name } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { id: res.body.user.id, email, token: res.body.session.accessToken };
}

/** Verifies a user's email the way an app does: the code from the mail (the dev outbox), confirmed. */
async function verifyEmail(user) {
  assert.equal((await call("POST", "/v1/auth/verify-email", { token: user.token, body: {} })).status, 202);
  const outbox = await call("GET", "/v1/dev/outbox");
  const mail = outbox.body.items.find((m) => m.to === user.email && /confirm your email/.test(m.subject));
  const code = /Your verification code: (\S+)/.exec(mail?.text ?? "")?.[1];
  assert.ok(code, `no verification mail for ${user.email}`);
  const confirmed = await call("POST", "/v1/auth/verify-email/confirm", { body: { token: code } });
  assert.equal(confirmed.status, 204, JSON.stringify(confirmed.body));
}

const shot = async (name, opts = {}) => {
  if (SHOTS) await page.screenshot({ path: path.join(SHOTS, `${name}.png`), ...opts });
};

before(async () => {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does`,
  );
  worker = await startWorker();
  // The first admin comes from the command line, as in production (here against the test's D1).
  people.admin = await signupUser("ada.admin@example.com", "Ada Admin");
  // An admin's email must be verified first (issue 23.8): the CLI refuses until it is.
  const early = spawnSync(
    process.execPath,
    [path.join(root, "scripts", "admin.mjs"), "promote", "ada.admin@example.com", "--persist-to", worker.persistTo],
    { cwd: root, encoding: "utf8" },
  );
  assert.equal(early.status, 1, early.stdout);
  assert.match(early.stderr, /has not verified its email/);
  await verifyEmail(people.admin);
  const promote = spawnSync(
    process.execPath,
    [path.join(root, "scripts", "admin.mjs"), "promote", "Ada.Admin@example.com", "--persist-to", worker.persistTo],
    { cwd: root, encoding: "utf8" },
  );
  assert.equal(promote.status, 0, promote.stderr || promote.stdout);
  assert.match(promote.stdout, /is now an admin/);
  people.bob = await signupUser("bob.builder@example.com", "Bob Builder");
  people.carol = await signupUser("carol.chen@example.com", "Carol Chen");
  for (const [email, name] of [
    ["dan@example.com", "Dan Diaz"],
    ["erin@example.com", null],
    ["frank@example.com", "Frank Ocean"],
  ])
    await signupUser(email, name ?? undefined);
  const note = await call("POST", "/v1/collections/notes/records", {
    token: people.bob.token,
    body: { title: "Shopping list", body: "milk, eggs", tags: ["home"] },
  });
  assert.equal(note.status, 201);
  people.note = note.body;
  await call("POST", "/v1/collections/notes/records", {
    token: people.carol.token,
    body: { title: "Release checklist", pinned: true, tags: ["work", "q4"] },
  });
  const room = await call("POST", "/v1/rooms", {
    token: people.carol.token,
    body: { kind: "group", name: "Launch team", memberIds: [people.bob.id] },
  });
  assert.equal(room.status, 201);
  people.room = room.body;
  await call("POST", `/v1/rooms/${room.body.id}/messages`, {
    token: people.carol.token,
    body: { clientId: "m1", text: "Welcome to the launch room!" },
  });
  const spam = await call("POST", `/v1/rooms/${room.body.id}/messages`, {
    token: people.bob.token,
    body: { clientId: "m2", text: "Buy cheap watches at example.net" },
  });
  people.spam = spam.body;
  await call("POST", `/v1/rooms/${room.body.id}/messages`, {
    token: people.carol.token,
    body: { clientId: "m3", text: "Ship date is Friday." },
  });
  const team = await call("POST", "/v1/teams", { token: people.carol.token, body: { name: "Field crew" } });
  assert.equal(team.status, 201, JSON.stringify(team.body));
  people.team = team.body;
  const invited = await call("POST", `/v1/teams/${team.body.id}/invitations`, {
    token: people.carol.token,
    body: { email: "gina@example.com", role: "member" },
  });
  assert.equal(invited.status, 201, JSON.stringify(invited.body));
  // The team's shared shopping list (a team-scoped collection), for the team's records on its page.
  const list = await call("POST", "/v1/collections/lists/records", {
    token: people.carol.token,
    body: { teamId: team.body.id, title: "Site supplies" },
  });
  assert.equal(list.status, 201, JSON.stringify(list.body));
  people.list = list.body;

  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
  profile = mkdtempSync(path.join(os.tmpdir(), "outpost-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    // No internet here: nothing in the background may try to reach it.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
  // Two real PNGs (drawn by the browser itself) and a text file, for the files page.
  for (const [name, from, to] of [
    ["sunset.png", "#f97316", "#7c3aed"],
    ["ocean.png", "#06b6d4", "#1e3a8a"],
  ]) {
    const dataUrl = await page.evaluate(
      ([a, b]) => {
        const canvas = document.createElement("canvas");
        canvas.width = 320;
        canvas.height = 240;
        const g = canvas.getContext("2d");
        const grad = g.createLinearGradient(0, 0, 320, 240);
        grad.addColorStop(0, a);
        grad.addColorStop(1, b);
        g.fillStyle = grad;
        g.fillRect(0, 0, 320, 240);
        return canvas.toDataURL("image/png");
      },
      [from, to],
    );
    const bytes = Buffer.from(dataUrl.split(",")[1], "base64");
    const res = await fetch(`${worker.url}/v1/files?name=${name}&visibility=private`, {
      method: "POST",
      headers: { authorization: `Bearer ${people.carol.token}`, "content-type": "image/png" },
      body: bytes,
    });
    assert.equal(res.status, 201, await res.text());
  }
  const txt = await fetch(`${worker.url}/v1/files?name=notes.txt&visibility=private`, {
    method: "POST",
    headers: { authorization: `Bearer ${people.bob.token}`, "content-type": "text/plain" },
    body: "hello",
  });
  people.textFile = await txt.json();
  // The console's script asks before destructive actions: accept (and count: proof it ran).
  page.on("dialog", (d) => {
    dialogs++;
    d.accept();
  });
  // The Content-Security-Policy names the console's own script and stylesheet: nothing is blocked.
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
});

after(async () => {
  await context?.close();
  await worker?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

describe("admin console in Chromium", () => {
  it("refuses a non-admin's (correct) password", async () => {
    await page.goto(`${worker.url}/admin`);
    assert.equal(new URL(page.url()).pathname, "/admin/login");
    await page.fill('input[name="email"]', people.bob.email);
    await page.fill('input[name="password"]', PASSWORD);
    await page.click('button[type="submit"]');
    await page.getByText("may not use the console").waitFor();
    assert.equal(new URL(page.url()).pathname, "/admin/login");
    const cookies = await context.cookies(`${worker.url}/admin`);
    assert.equal(
      cookies.some((c) => c.name === "__Secure-outpost_admin"),
      false,
    );
  });

  it("signs an admin in (HttpOnly, SameSite=Strict cookie scoped to /admin; nothing in localStorage)", async () => {
    await page.fill('input[name="email"]', people.admin.email);
    await page.fill('input[name="password"]', PASSWORD);
    await page.click('button[type="submit"]');
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    const cookie = (await context.cookies(`${worker.url}/admin`)).find((c) => c.name === "__Secure-outpost_admin");
    assert.ok(cookie, "session cookie set");
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, "Strict");
    assert.equal(cookie.path, "/admin");
    assert.equal(await page.evaluate(() => window.localStorage.length + window.sessionStorage.length), 0);
    assert.equal(await page.evaluate(() => document.cookie), "", "the session cookie is not readable by scripts");
    // The stylesheet (a static asset) applied: the header is sticky, not the browser default.
    assert.equal(await page.evaluate(() => getComputedStyle(document.querySelector(".top")).position), "sticky");
    await shot("overview", { fullPage: true });
  });

  it("finds a user and disables them; their login is then refused", async () => {
    await page.click('a.nav-link:has-text("Users")');
    await page.fill('input[name="q"]', "bob.builder");
    await page.click('button:has-text("Search")');
    await page.click(`a:has-text("${people.bob.email}")`);
    await page.getByRole("heading", { name: "Bob Builder" }).waitFor();
    await page.click('button:has-text("Disable")');
    await page.getByText("The user is disabled").waitFor();
    await page.locator(".pill.danger", { hasText: "disabled" }).waitFor();
    const login = await call("POST", "/v1/auth/login", { body: { email: people.bob.email, password: PASSWORD } });
    assert.equal(login.status, 403);
    assert.equal(login.body.code, "account_disabled");
    await shot("user");
  });

  it("refuses a form whose CSRF token is missing, and nothing changes", async () => {
    const form = page.locator('form[action$="/enable"]');
    await form.locator('input[name="_csrf"]').evaluate((el) => el.remove());
    await form.locator("button").click();
    await page.getByText("security token is missing or wrong").waitFor();
    const login = await call("POST", "/v1/auth/login", { body: { email: people.bob.email, password: PASSWORD } });
    assert.equal(login.status, 403, "still disabled");
  });

  it("edits a note with the collection's validation, and the API returns the edit", async () => {
    await page.goto(`${worker.url}/admin/collections/notes`);
    // The API's list rules: a text search reads one owner's records, so the filter names the owner.
    await page.fill(
      'input[name="where"]',
      JSON.stringify({ ownerId: people.note.ownerId, title: { $contains: "Shopping" } }),
    );
    await page.click('button:has-text("Filter")');
    await page.locator("tbody tr").first().waitFor();
    assert.equal(await page.locator("tbody tr").count(), 1);
    await page.click("tbody tr a.strong");
    // Invalid first: the API's validation answers, nothing is saved.
    await page.fill('input[name="title"]', "");
    await page.click('button:has-text("Save")');
    await page.getByText("some fields are not valid").waitFor();
    await page.fill('input[name="title"]', "Shopping list (checked by support)");
    await page.fill('textarea[name="tags"]', "home\nurgent");
    await page.click('button:has-text("Save")');
    await page.getByText("The record is saved.").waitFor();
    const rec = await call("GET", `/v1/collections/notes/records/${people.note.id}`, { token: SECRETS.SERVICE_KEY });
    assert.equal(rec.status, 200);
    assert.equal(rec.body.title, "Shopping list (checked by support)");
    assert.deepEqual(rec.body.tags, ["home", "urgent"]);
    assert.equal(rec.body.version, 2);
  });

  it("deletes a message from a room's history", async () => {
    await page.click('a.nav-link:has-text("Rooms")');
    await page.click('a:has-text("Launch team")');
    await page.getByText("Buy cheap watches").waitFor();
    await shot("room");
    const item = page.locator("li.message", { hasText: "Buy cheap watches" });
    await item.locator('button:has-text("Delete")').click();
    await page.getByText("The message is deleted.").waitFor();
    assert.equal(await page.getByText("Buy cheap watches").count(), 0);
    const history = await call("GET", `/v1/rooms/${people.room.id}/messages`, { token: people.carol.token });
    const tomb = history.body.items.find((m) => m.seq === people.spam.seq);
    assert.equal(tomb.deleted, true);
    assert.equal(tomb.text, null);
  });

  it("opens a team and revokes its pending invitation", async () => {
    await page.click('a.nav-link:has-text("Teams")');
    await page.click('a:has-text("Field crew")');
    await page.getByText("gina@example.com").waitFor();
    await page.locator("tr", { hasText: "gina@example.com" }).locator('button:has-text("Revoke")').click();
    await page.getByText("The invitation is revoked.").waitFor();
    assert.equal(await page.getByText("gina@example.com").count(), 0);
  });

  it("shows a team's records; a record's page links back to its team", async () => {
    await page.getByRole("heading", { name: "Records" }).waitFor();
    const row = page.locator("tr", { hasText: "Site supplies" });
    await row.waitFor();
    await row.locator(`a[href="/admin/collections/lists/${people.list.id}"]`).click();
    await page.getByRole("heading", { name: "Record", exact: true }).waitFor();
    await page.click(`a[href="/admin/teams/${people.team.id}"]`);
    await page.getByRole("heading", { name: "Field crew", exact: true }).waitFor();
  });

  it("lists files with image thumbnails, downloads and deletes them", async () => {
    await page.click('a.nav-link:has-text("Files")');
    await page.getByText("sunset.png").waitFor();
    // The thumbnails are the private images themselves, loaded through the console with its cookie.
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll("img.thumb")].length === 2 &&
        [...document.querySelectorAll("img.thumb")].every((i) => i.complete && i.naturalWidth === 320),
    );
    await shot("files");
    const row = page.locator("tr", { hasText: "notes.txt" });
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      row.locator('a:has-text("Download")').click(),
    ]);
    assert.equal(download.suggestedFilename(), "notes.txt");
    await row.locator('button:has-text("Delete")').click();
    await page.getByText("The file is deleted.").waitFor();
    assert.equal(await page.locator("tr", { hasText: "notes.txt" }).count(), 0);
    // Bob was disabled above, so his own token is refused now (403); the service key asks instead.
    const gone = await call("GET", `/v1/files/${people.textFile.id}`, { token: SECRETS.SERVICE_KEY });
    assert.equal(gone.status, 404);
  });

  it("shows every action in the audit log", async () => {
    await page.click('a.nav-link:has-text("Audit log")');
    for (const action of ["user.update", "record.update", "message.delete", "file.delete"])
      await page.locator("code", { hasText: action }).first().waitFor();
    assert.ok(dialogs > 0, "the console's script (admin.js) never ran: no confirmation dialog");
    assert.deepEqual(cspViolations, []);
    if (SHOTS) {
      // Phone width, dark mode from the system setting.
      await page.emulateMedia({ colorScheme: "dark" });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(`${worker.url}/admin/users`);
      await shot("users-phone-dark");
    }
  });
});

describe("npm run admin (the promote CLI)", () => {
  const cli = (...args) =>
    spawnSync(process.execPath, [path.join(root, "scripts", "admin.mjs"), ...args], { cwd: root, encoding: "utf8" });

  it("refuses an address that could leave the SQL literal, before running anything", () => {
    for (const bad of [
      "x'; UPDATE users SET role = 'admin'; --@example.com",
      "a b@example.com",
      "no-at-sign",
      "a@b",
      `${"a".repeat(250)}@example.com`,
    ]) {
      const r = cli("promote", bad, "--persist-to", worker.persistTo);
      assert.equal(r.status, 2, `${bad}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /not a valid email address/);
    }
    assert.equal(cli("promote").status, 2);
    assert.equal(cli("elevate", "a@example.com").status, 2);
  });

  it("says so when no account has the email, and changes nobody", async () => {
    const r = cli("promote", "nobody.here@example.com", "--persist-to", worker.persistTo);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /No account has the email nobody\.here@example\.com/);
    const admins = await call("GET", "/v1/admin/users?limit=200", { token: SECRETS.SERVICE_KEY });
    assert.deepEqual(
      admins.body.items.filter((u) => u.role === "admin").map((u) => u.email),
      [people.admin.email],
    );
  });

  it("demote takes the role back", async () => {
    const r = cli("demote", people.carol.email, "--persist-to", worker.persistTo);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /is now a regular user/);
  });

  it("will not demote the last active admin", async () => {
    const users = await call("GET", "/v1/admin/users?limit=200", { token: SECRETS.SERVICE_KEY });
    for (const u of users.body.items.filter((x) => x.role === "admin" && x.id !== people.admin.id)) {
      assert.equal(cli("demote", u.email, "--persist-to", worker.persistTo).status, 0);
    }
    const r = cli("demote", people.admin.email, "--persist-to", worker.persistTo);
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stderr, /is the last active admin/);
    const me = await call("GET", "/v1/me", { token: people.admin.token });
    assert.equal(me.body.role, "admin");
  });
});

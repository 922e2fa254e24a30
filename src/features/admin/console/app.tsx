/**
 * The admin console at `/admin`: server-rendered pages (hono/jsx) served by the same Worker, its
 * stylesheet and script static assets (public/admin). It is its own Hono app, mounted ahead of the
 * API's middleware: pages, not JSON, a strict Content-Security-Policy, no CORS.
 *
 * Every page but the sign-in needs a signed-in admin (a console session cookie). Every POST passes
 * two CSRF checks: the Origin / Sec-Fetch-Site check (hono/csrf) and the form's synchronizer token.
 * Destructive actions are confirmed first (a dialog with the script, a confirmation page without).
 * Actions run through the same services as the API and write the same audit rows.
 */
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { csrf } from "hono/csrf";
import { HTTPException } from "hono/http-exception";
import type { Child } from "hono/jsx";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import * as v from "valibot";
import { getConfig, limits } from "../../../config";
import { primaryDb } from "../../../db";
import type { Principal } from "../../../env";
import { AppError, toAppError } from "../../../errors";
import { verifyPassword } from "../../../lib/crypto";
import { isId } from "../../../lib/ids";
import { endSessionSockets, enqueue, type Lifecycle } from "../../../lifecycle";
import { checkRate, clientIp } from "../../../middleware/rate-limit";
import { userByEmail } from "../../auth";
import { listAllRooms, roomStub, roomWithMembers } from "../../chat";
import {
  collectionSchemas,
  deleteRecord,
  findCollection,
  getRecord,
  listRecords,
  updateRecord,
} from "../../collections";
import { deleteFile, getFile, listAllFiles, serveContent } from "../../files";
import { listDevices } from "../../push";
import {
  type Actor,
  endUserSessions,
  listAudit,
  listUsers,
  overview,
  recordAudit,
  removeUser,
  sendResetMail,
  updateUser,
  userDetail,
} from "../service";
import type { ConsoleEnv } from "./context";
import { formToValues } from "./forms";
import * as Pages from "./pages";
import { currentAdmin, endSession, loginCsrf, loginCsrfValid, sessionCsrf, startSession } from "./session";
import { isNotice, Layout, type Notice, P, type Section } from "./ui";

type C = Context<ConsoleEnv>;

/** The service principal: the console acts with the service key's reach (rules do not apply to admins). */
const SERVICE: Principal = { kind: "service" };

const CSP = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
  connectSrc: ["'self'"],
};

const actor = (c: C): Actor => ({ id: c.var.admin.userId, requestId: c.var.requestId });

/** A page in the frame, with the signed-in admin's navigation. */
function page(
  c: C,
  title: string,
  section: Section | undefined,
  body: Child,
  status: 200 | 400 | 403 | 404 | 409 | 412 | 429 | 500 = 200,
) {
  const done = c.req.query("done");
  const admin = c.get("admin");
  return c.html(
    <Layout
      title={title}
      appName={c.var.config.appName}
      admin={admin}
      csrf={c.get("csrf")}
      section={section}
      notice={isNotice(done) ? done : undefined}
    >
      {body}
    </Layout>,
    status,
  );
}

const redirect = (c: C, to: string, done?: Notice) =>
  c.redirect(done ? `${to}${to.includes("?") ? "&" : "?"}done=${done}` : to, 303);

/** The parsed form (text fields only; files are ignored). */
async function form(c: C): Promise<Record<string, string>> {
  const body = await c.req.parseBody();
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(body)) if (typeof val === "string") out[k] = val;
  return out;
}

/** A destructive action's first POST: the confirmation page instead (nothing happens yet). */
async function unconfirmed(c: C, message: string, back: string): Promise<Response | null> {
  const f = await form(c);
  if (f.confirm === "yes") return null;
  const { _csrf, confirm, ...fields } = f;
  return page(
    c,
    "Confirm",
    undefined,
    <Pages.ConfirmPage action={c.req.path} csrf={c.var.csrf} message={message} fields={fields} back={back} />,
  );
}

const idParam = (c: C, name = "id") => {
  const id = c.req.param(name) ?? "";
  if (!isId(id)) throw new AppError("not_found", "No such page.");
  return id;
};

const limitOf = () => limits.adminPageSize;

/** valibot issues as the API's `errors` (path, message). */
const fieldErrors = (target: string, issues: readonly v.BaseIssue<unknown>[]) =>
  issues.map((i) => ({ path: i.path?.map((p) => String(p.key)).join(".") || target, message: i.message }));

const consoleApp = new Hono<ConsoleEnv>().basePath(P);

/** The assembled lifecycle, handed over once by the root (`createConsole`). */
let lifecycle: Lifecycle | null = null;

/** The console app, given the root's assembled lifecycle (account deletion, ending sessions). */
export function createConsole(assembled: Lifecycle) {
  lifecycle = assembled;
  return consoleApp;
}

consoleApp.use(async (c, next) => {
  if (!lifecycle) throw new Error("the admin console is used before createConsole()");
  c.set("lifecycle", lifecycle);
  await next();
});

// `/admin/` is `/admin`.
consoleApp.use(async (c, next) => (c.req.path === `${P}/` ? c.redirect(P, 301) : next()));
consoleApp.use(requestId({ headerName: "X-Request-Id", limitLength: 128 }));
// Outside secureHeaders: stored bytes keep serveContent's own policy (`default-src 'none'; sandbox`).
consoleApp.use(async (c, next) => {
  await next();
  if (c.get("fileContent")) c.res.headers.set("content-security-policy", "default-src 'none'; sandbox");
});
consoleApp.use(
  secureHeaders({
    contentSecurityPolicy: CSP,
    xFrameOptions: "DENY",
    referrerPolicy: "no-referrer",
    crossOriginResourcePolicy: "same-origin",
    crossOriginOpenerPolicy: "same-origin",
  }),
);
consoleApp.use(async (c, next) => {
  c.set("config", getConfig(c.env));
  c.set("db", primaryDb(c.env.DB));
  await next();
  if (!c.res.headers.has("cache-control")) c.res.headers.set("cache-control", "no-store");
});
// Forms only: a small body. Origin / Sec-Fetch-Site must be this site on every POST.
consoleApp.use(
  bodyLimit({
    maxSize: 64 * 1024,
    onError: () => {
      throw new AppError("payload_too_large", "This form is too large.");
    },
  }),
);
consoleApp.use(csrf());

// --- sign-in ---------------------------------------------------------------------------------

consoleApp.get("/login", async (c) => {
  if (await currentAdmin(c)) return c.redirect(P, 303);
  return c.html(
    <Layout title="Sign in" appName={c.var.config.appName}>
      <Pages.LoginPage csrf={await loginCsrf(c)} />
    </Layout>,
  );
});

const LOGIN_REFUSED = "Wrong email or password, or this account may not use the console.";

consoleApp.post("/login", async (c) => {
  const f = await form(c);
  if (!(await loginCsrfValid(c, f._csrf ?? "")))
    throw new HTTPException(403, {
      message: "The sign-in form expired or did not come from this console; reload it and try again.",
    });
  await checkRate(c.env, "AUTH_LIMITER", `admin-login:${clientIp(c.req)}`);
  const email = (f.email ?? "").trim().toLowerCase().slice(0, limits.emailMax);
  const password = (f.password ?? "").slice(0, limits.passwordMax);
  const user = email ? await userByEmail(c.var.db, email) : undefined;
  // One PBKDF2 whatever the account: no timing difference between "no such admin" and a wrong password.
  const { ok } = await verifyPassword(password, user?.passwordHash ?? null);
  if (!user || !ok || user.role !== "admin" || user.disabled) {
    return c.html(
      <Layout title="Sign in" appName={c.var.config.appName}>
        <Pages.LoginPage csrf={await loginCsrf(c)} email={email} error={LOGIN_REFUSED} />
      </Layout>,
      401,
    );
  }
  await startSession(c, user.id);
  return c.redirect(P, 303);
});

// --- everything else needs a signed-in admin and, on POST, the form's token ------------------------

consoleApp.use(async (c, next) => {
  const admin = await currentAdmin(c);
  if (!admin) {
    if (c.req.method === "GET" || c.req.method === "HEAD") return c.redirect(`${P}/login`, 303);
    throw new HTTPException(403, { message: "You are not signed in (or your session ended); sign in again." });
  }
  c.set("admin", admin);
  c.set("csrf", await sessionCsrf(c, admin));
  if (c.req.method === "POST") {
    const sent = (await form(c))._csrf ?? "";
    if (sent !== c.var.csrf)
      throw new HTTPException(403, {
        message: "This form's security token is missing or wrong; reload the page and try again.",
      });
  }
  await next();
});

consoleApp.post("/logout", async (c) => {
  await endSession(c, c.var.db, c.var.admin);
  return c.redirect(`${P}/login`, 303);
});

consoleApp.get("/", async (c) => page(c, "Overview", "overview", <Pages.OverviewPage o={await overview(c.var.db)} />));

// --- users -------------------------------------------------------------------------------------

const SearchQuery = v.object({
  q: v.optional(v.pipe(v.string(), v.trim(), v.maxLength(limits.adminSearchMax)), ""),
  cursor: v.optional(v.pipe(v.string(), v.maxLength(512))),
});

consoleApp.get("/users", async (c) => {
  const q = v.safeParse(SearchQuery, c.req.query());
  const { q: search, cursor } = q.success ? q.output : { q: "", cursor: undefined };
  const res = await listUsers(c.var.db, { q: search, limit: limitOf(), cursor });
  return page(
    c,
    "Users",
    "users",
    <Pages.UsersPage q={search} items={res.items} next={res.nextCursor} paged={cursor !== undefined} />,
  );
});

async function loadUser(c: C) {
  const u = await userDetail(c.var.db, idParam(c));
  if (!u) throw new AppError("not_found", "No such user.");
  return u;
}

consoleApp.get("/users/:id", async (c) => {
  const u = await loadUser(c);
  const audit = await listAudit(c.var.db, { limit: 10, target: `user:${u.id}` });
  return page(
    c,
    u.email ?? "User",
    "users",
    <Pages.UserPage u={u} csrf={c.var.csrf} self={u.id === c.var.admin.userId} audit={audit.items} />,
  );
});

const userBack = (id: string) => `${P}/users/${id}`;

consoleApp.post("/users/:id/disable", async (c) => {
  const id = idParam(c);
  const ask = await unconfirmed(
    c,
    "Disable this user? They are signed out everywhere and cannot sign in until enabled.",
    userBack(id),
  );
  if (ask) return ask;
  await updateUser(c.var.db, actor(c), id, { disabled: true });
  c.executionCtx.waitUntil(endSessionSockets(c.var.lifecycle, c.env, id, "all"));
  return redirect(c, userBack(id), "disabled");
});

consoleApp.post("/users/:id/enable", async (c) => {
  const id = idParam(c);
  await updateUser(c.var.db, actor(c), id, { disabled: false });
  return redirect(c, userBack(id), "enabled");
});

consoleApp.post("/users/:id/promote", async (c) => {
  const id = idParam(c);
  const ask = await unconfirmed(c, "Make this user an admin?", userBack(id));
  if (ask) return ask;
  await updateUser(c.var.db, actor(c), id, { role: "admin" });
  return redirect(c, userBack(id), "promoted");
});

consoleApp.post("/users/:id/demote", async (c) => {
  const id = idParam(c);
  const ask = await unconfirmed(c, "Take the admin role from this user?", userBack(id));
  if (ask) return ask;
  await updateUser(c.var.db, actor(c), id, { role: "user" });
  return redirect(c, userBack(id), "demoted");
});

consoleApp.post("/users/:id/end-sessions", async (c) => {
  const id = idParam(c);
  const ask = await unconfirmed(c, "End every session of this user? Their apps must sign in again.", userBack(id));
  if (ask) return ask;
  if (!(await userDetail(c.var.db, id))) throw new AppError("not_found", "No such user.");
  await endUserSessions(c.var.db, actor(c), id);
  c.executionCtx.waitUntil(endSessionSockets(c.var.lifecycle, c.env, id, "all"));
  return redirect(c, userBack(id), "sessions");
});

consoleApp.post("/users/:id/reset-mail", async (c) => {
  const id = idParam(c);
  const base = c.env.APP_LINK_BASE || c.var.config.publicUrl || new URL(c.req.url).origin;
  await sendResetMail(c.var.config, c.var.db, actor(c), id, base);
  return redirect(c, userBack(id), "reset");
});

consoleApp.post("/users/:id/delete", async (c) => {
  const id = idParam(c);
  const ask = await unconfirmed(c, "Delete this user and everything they own? This cannot be undone.", userBack(id));
  if (ask) return ask;
  const after = await removeUser(c.var.lifecycle, c.env, c.var.db, actor(c), id);
  c.executionCtx.waitUntil(after());
  return redirect(c, `${P}/users`, "user-deleted");
});

consoleApp.get("/users/:id/devices", async (c) => {
  const id = idParam(c);
  const u = await loadUser(c);
  const cursor = c.req.query("cursor");
  const res = await listDevices(c.var.db, id, limitOf(), cursor);
  return page(
    c,
    "Devices",
    "users",
    <Pages.DevicesPage u={u} items={res.items} next={res.nextCursor} paged={cursor !== undefined} csrf={c.var.csrf} />,
  );
});

consoleApp.post("/users/:id/devices/:deviceId/test-push", async (c) => {
  const id = idParam(c);
  const deviceId = idParam(c, "deviceId");
  const devices = await listDevices(c.var.db, id, limits.pushDevicesPerUser);
  if (!devices.items.some((d) => d.id === deviceId)) throw new AppError("not_found", "No such device of this user.");
  const message = {
    title: `${c.var.config.appName} test`,
    body: "A test notification from the admin console.",
    data: {},
  };
  await enqueue(c.env, { type: "push.deliver", targets: [{ deviceId, userId: id }], message, attempt: 1 });
  await recordAudit(c.var.db, actor(c), { action: "push.test", target: `user:${id}`, detail: { deviceId } });
  return redirect(c, `${userBack(id)}/devices`, "pushed");
});

// --- collections -------------------------------------------------------------------------------

function collectionOf(c: C) {
  const col = findCollection(c.req.param("name") ?? "");
  if (!col) throw new AppError("not_found", "No such collection.");
  return col;
}

consoleApp.get("/collections/:name", async (c) => {
  const col = collectionOf(c);
  const S = collectionSchemas(col);
  const where = c.req.query("where")?.trim() ?? "";
  const sort = c.req.query("sort") ?? "-createdAt";
  const cursor = c.req.query("cursor");
  // The fields the API sorts on: createdAt, updatedAt and the declaration's `sortable` fields.
  const sortable = [...col.sortable];
  // The API's own query schema: the same `where`, the same errors.
  const parsed = v.safeParse(S.listQuery, {
    ...(where ? { where } : {}),
    sort,
    limit: String(limitOf()),
    ...(cursor ? { cursor } : {}),
  });
  const view = (
    items: Awaited<ReturnType<typeof listRecords>>["items"],
    next: string | null,
    error?: { message: string; errors?: { path: string; message: string }[] },
    status: 200 | 400 = 200,
  ) =>
    page(
      c,
      col.name,
      `collection:${col.name}`,
      <Pages.CollectionPage
        col={col}
        where={where}
        sort={sort}
        sortable={sortable}
        items={items}
        next={next}
        paged={cursor !== undefined}
        error={error}
      />,
      status,
    );
  if (!parsed.success)
    return view([], null, { message: "This filter is not valid.", errors: fieldErrors("where", parsed.issues) }, 400);
  try {
    const res = await listRecords(c.var.db, col, SERVICE, parsed.output);
    return view(res.items, res.nextCursor);
  } catch (e) {
    const err = toAppError(e);
    if (err.status !== 400) throw e;
    return view([], null, { message: err.detail ?? "This filter is not valid.", errors: err.extra.errors }, 400);
  }
});

consoleApp.get("/collections/:name/:id", async (c) => {
  const col = collectionOf(c);
  const r = await getRecord(c.var.db, col, SERVICE, idParam(c));
  return page(
    c,
    `${col.name} record`,
    `collection:${col.name}`,
    <Pages.RecordPage col={col} r={r} csrf={c.var.csrf} />,
  );
});

consoleApp.post("/collections/:name/:id", async (c) => {
  const col = collectionOf(c);
  const id = idParam(c);
  const f = await form(c);
  const S = collectionSchemas(col);
  const parsed = v.safeParse(S.patch, formToValues(col, f));
  const version = Number(f._version);
  const again = async (message: string, errors?: { path: string; message: string }[], status: 400 | 412 = 400) => {
    const r = await getRecord(c.var.db, col, SERVICE, id);
    return page(
      c,
      `${col.name} record`,
      `collection:${col.name}`,
      <Pages.RecordPage col={col} r={r} csrf={c.var.csrf} values={f} error={{ message, errors }} />,
      status,
    );
  };
  if (!parsed.success) return again("Not saved: some fields are not valid.", fieldErrors("body", parsed.issues));
  try {
    await updateRecord(c.var.db, col, SERVICE, id, parsed.output, Number.isSafeInteger(version) ? [version] : null);
  } catch (e) {
    if (e instanceof AppError && e.code === "version_conflict")
      return again("Not saved: someone changed this record meanwhile. Review it and save again.", undefined, 412);
    throw e;
  }
  await recordAudit(c.var.db, actor(c), {
    action: "record.update",
    target: `${col.name}:${id}`,
    detail: { fields: Object.keys(parsed.output) },
  });
  return redirect(c, `${P}/collections/${col.name}/${id}`, "saved");
});

consoleApp.post("/collections/:name/:id/delete", async (c) => {
  const col = collectionOf(c);
  const id = idParam(c);
  const ask = await unconfirmed(
    c,
    "Delete this record? Synced clients will drop it too.",
    `${P}/collections/${col.name}/${id}`,
  );
  if (ask) return ask;
  await deleteRecord(c.var.db, col, SERVICE, id, null);
  await recordAudit(c.var.db, actor(c), { action: "record.delete", target: `${col.name}:${id}` });
  return redirect(c, `${P}/collections/${col.name}`, "record-deleted");
});

// --- files -------------------------------------------------------------------------------------

consoleApp.get("/files", async (c) => {
  const cursor = c.req.query("cursor");
  const res = await listAllFiles(c.var.db, limitOf(), cursor && isId(cursor) ? cursor : null);
  return page(
    c,
    "Files",
    "files",
    <Pages.FilesPage items={res.rows} next={res.nextCursor} paged={cursor !== undefined} csrf={c.var.csrf} />,
  );
});

consoleApp.get("/files/:id/content", async (c) => {
  const row = await getFile(c.var.db, idParam(c));
  if (!row) throw new AppError("not_found", "No such file.");
  const res = await serveContent(c.env.MEDIA, row, c.req.raw, "private");
  c.set("fileContent", true);
  // Only checked raster images show inline (thumbnails); everything else downloads.
  if (c.req.query("download") !== undefined || !Pages.isRaster(row.contentType))
    res.headers.set(
      "content-disposition",
      res.headers.get("content-disposition")?.replace(/^inline/, "attachment") ?? "attachment",
    );
  return res;
});

consoleApp.post("/files/:id/delete", async (c) => {
  const id = idParam(c);
  const ask = await unconfirmed(c, "Delete this file? Its bytes are removed from storage.", `${P}/files`);
  if (ask) return ask;
  const row = await getFile(c.var.db, id);
  if (!row) throw new AppError("not_found", "No such file.");
  await deleteFile(c.env, c.var.db, row);
  await recordAudit(c.var.db, actor(c), {
    action: "file.delete",
    target: `file:${id}`,
    detail: { name: row.name, ownerId: row.ownerId },
  });
  return redirect(c, `${P}/files`, "file-deleted");
});

// --- rooms -------------------------------------------------------------------------------------

consoleApp.get("/rooms", async (c) => {
  const cursor = c.req.query("cursor");
  const res = await listAllRooms(c.var.db, limitOf(), cursor);
  return page(
    c,
    "Rooms",
    "rooms",
    <Pages.RoomsPage items={res.items} next={res.nextCursor} paged={cursor !== undefined} />,
  );
});

const Before = v.optional(v.pipe(v.string(), v.regex(/^\d{1,15}$/), v.transform(Number)));

consoleApp.get("/rooms/:id", async (c) => {
  const id = idParam(c);
  const data = await roomWithMembers(c.var.db, id);
  if (!data) throw new AppError("not_found", "No such room.");
  const before = v.safeParse(Before, c.req.query("before"));
  const history = await roomStub(c.env, id).history(id, {
    before: before.success ? before.output : undefined,
    limit: limitOf() * 2,
  });
  const older = history.more ? (history.items[0]?.seq ?? null) : null;
  return page(
    c,
    data.room.name ?? "Room",
    "rooms",
    <Pages.RoomPage room={data.room} members={data.members} messages={history.items} older={older} csrf={c.var.csrf} />,
  );
});

consoleApp.post("/rooms/:id/messages/:seq/delete", async (c) => {
  const id = idParam(c);
  const seq = Number(c.req.param("seq"));
  if (!/^\d{1,15}$/.test(c.req.param("seq")) || seq < 1) throw new AppError("not_found", "No such message.");
  const ask = await unconfirmed(c, `Delete message #${seq}? Members see it as deleted.`, `${P}/rooms/${id}`);
  if (ask) return ask;
  if (!(await roomWithMembers(c.var.db, id))) throw new AppError("not_found", "No such room.");
  // The room's own deletion (as DELETE /v1/rooms/:id/messages/:seq), acting as the room's owner.
  const r = await roomStub(c.env, id).deleteMessage(id, seq, c.var.admin.userId, true);
  if (!r.ok) throw new AppError(r.code, r.detail);
  await recordAudit(c.var.db, actor(c), { action: "message.delete", target: `room:${id}#${seq}` });
  return redirect(c, `${P}/rooms/${id}`, "message-deleted");
});

// --- audit -------------------------------------------------------------------------------------

consoleApp.get("/audit", async (c) => {
  const cursor = c.req.query("cursor");
  const res = await listAudit(c.var.db, { limit: limitOf(), cursor });
  return page(
    c,
    "Audit log",
    "audit",
    <Pages.AuditPage items={res.items} next={res.nextCursor} paged={cursor !== undefined} />,
  );
});

// --- errors ------------------------------------------------------------------------------------

function errorPage(c: C, status: number, message: string) {
  const code = ([400, 403, 404, 409, 412, 429].includes(status) ? status : 500) as
    | 400
    | 403
    | 404
    | 409
    | 412
    | 429
    | 500;
  return c.html(
    <Layout title="Error" appName={c.var.config?.appName ?? "Outpost"} admin={c.get("admin")} csrf={c.get("csrf")}>
      <Pages.ErrorPage status={code} message={message} />
    </Layout>,
    code,
  );
}

consoleApp.notFound((c) => errorPage(c, 404, "There is no such page in the console."));
consoleApp.onError((err, c) => {
  if (err instanceof HTTPException && err.status === 403)
    return errorPage(
      c,
      403,
      err.message || "This request did not come from this console (CSRF check); reload the page and try again.",
    );
  const e = toAppError(err);
  if (e.status >= 500)
    console.error(
      `[${c.var.requestId ?? "-"}] console ${c.req.method} ${c.req.path} failed:`,
      err instanceof Error ? (err.stack ?? err.message) : String(err),
    );
  return errorPage(
    c,
    e.status,
    e.status >= 500 ? "Something went wrong on our side." : (e.detail ?? "This request was refused."),
  );
});

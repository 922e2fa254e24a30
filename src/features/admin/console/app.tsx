/**
 * The admin console at `/admin`: server-rendered pages (hono/jsx) served by the same Worker, its
 * stylesheet and script static assets (public/admin). It is its own Hono app, mounted ahead of the
 * API's middleware: pages, not JSON, a strict Content-Security-Policy, no CORS.
 *
 * Every page but the sign-in needs a signed-in admin (a console session cookie). Every POST passes
 * two CSRF checks: the Origin / Sec-Fetch-Site check (hono/csrf) and the form's synchronizer token.
 * Destructive actions are confirmed first (a dialog with the script, a confirmation page without).
 * Actions run through the same services as the API and write the same audit rows.
 * This file assembles the middleware and mounts one module per resource (CONTRIBUTING.md, "Adding
 * a console page").
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { csrf } from "hono/csrf";
import { HTTPException } from "hono/http-exception";
import type { FC } from "hono/jsx";
import { type ContentSecurityPolicyOptionHandler, secureHeaders } from "hono/secure-headers";
import { getConfig } from "../../../config";
import { primaryDb } from "../../../db";
import { AppError, toAppError } from "../../../errors";
import type { Lifecycle } from "../../../lifecycle";
import { requestIds } from "../../../middleware/request-id";
import { appCheck } from "./app-check";
import { audit } from "./audit";
import { collectionPages } from "./collections";
import type { ConsoleEnv } from "./context";
import { devices } from "./devices";
import { files } from "./files";
import { logic } from "./logic";
import { overview } from "./overview";
import type { C, PageStatus } from "./page";
import { passkeyActions } from "./passkeys";
import { records } from "./records";
import { release } from "./release";
import { rooms } from "./rooms";
import { login, logout, requireConsoleAdmin } from "./signin";
import { teams } from "./teams";
import { Layout, P } from "./ui";
import { userActions } from "./user-actions";
import { users } from "./users";
import { webhooks } from "./webhooks";

/** The console's own asset on this origin: nothing else on it (a user's upload, say) may run or style a page. */
const own =
  (file: string): ContentSecurityPolicyOptionHandler =>
  (c) =>
    `${new URL(c.req.url).origin}${P}/${file}`;

const CSP = {
  defaultSrc: ["'none'"],
  scriptSrc: [own("admin.js")],
  styleSrc: [own("admin.css")],
  imgSrc: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
  connectSrc: ["'self'"],
};

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
consoleApp.use(requestIds<ConsoleEnv>());
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

// --- the pages: sign-in first, then the gate, then one module per resource ------------------------

consoleApp.route("/login", login);
consoleApp.use(requireConsoleAdmin);
consoleApp.route("/logout", logout);
consoleApp.route("/", overview);
consoleApp.route("/users", users);
consoleApp.route("/users", userActions);
consoleApp.route("/users", passkeyActions);
consoleApp.route("/users/:id/devices", devices);
consoleApp.route("/collections", collectionPages);
consoleApp.route("/collections", records);
consoleApp.route("/files", files);
consoleApp.route("/rooms", rooms);
consoleApp.route("/teams", teams);
consoleApp.route("/logic", logic);
consoleApp.route("/app-check", appCheck);
consoleApp.route("/webhooks", webhooks);
consoleApp.route("/config", release);
consoleApp.route("/audit", audit);

// --- errors ------------------------------------------------------------------------------------

const ErrorPage: FC<{ status: number; message: string }> = ({ status, message }) => (
  <section class="card">
    <h1>{status === 404 ? "Not found" : status === 403 ? "Refused" : "Something went wrong"}</h1>
    <p>{message}</p>
    <p>
      <a href={P}>Back to the overview</a>
    </p>
  </section>
);

function errorPage(c: C, status: number, message: string) {
  const code = ([400, 403, 404, 409, 412, 429].includes(status) ? status : 500) as Exclude<PageStatus, 200>;
  return c.html(
    <Layout title="Error" appName={c.get("config")?.appName ?? "Outpost"} admin={c.get("admin")} csrf={c.get("csrf")}>
      <ErrorPage status={code} message={message} />
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
      `[${c.get("requestId") ?? "-"}] console ${c.req.method} ${c.req.path} failed:`,
      err instanceof Error ? (err.stack ?? err.message) : String(err),
    );
  return errorPage(
    c,
    e.status,
    e.status >= 500 ? "Something went wrong on our side." : (e.detail ?? "This request was refused."),
  );
});

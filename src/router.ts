/** Builds the Hono app: global middleware, the one error renderer, and one `app.route` per feature. */
import { type Context, Hono, type MiddlewareHandler, type Next } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
// The app's own routes come in here, not through src/registry.ts: they are built with the features
// (auth, collections), whose modules read the registry as they load, so the registry cannot import them.
import { appRoutes } from "./app/routes";
import { getConfig } from "./config";
import { BOOKMARK_HEADER, createDb, openSession } from "./db";
import type { AppEnv } from "./env";
import { AppError, problem, toAppError } from "./errors";
import { accountRoutes } from "./features/account";
import { adminReleaseRoutes, adminRoutes, createConsole, requireAdmin } from "./features/admin";
import { APP_CHECK_HEADER, appCheckGuard, appCheckRoutes } from "./features/app-check";
import { authRoutes } from "./features/auth";
import { blockRoutes } from "./features/blocks";
import { chatRoutes } from "./features/chat";
import { batchRoutes, collectionRoutes, unknownCollection } from "./features/collections";
import { fileRoutes, tusDiscovery, uploadRoutes } from "./features/files";
import { deviceRoutes } from "./features/push";
import { configRoutes, linkRoutes, requireCurrentApp, shortLinkPage, wellKnownRoutes } from "./features/release";
import { devRoutes, healthRoutes, mountDocs } from "./features/system";
import { teamRoutes } from "./features/teams";
import { webhookRoutes } from "./features/webhooks";
import { IslandRouter } from "./lib/route-matcher";
import { lifecycle } from "./lifecycle-parts";
import { newRequestIds } from "./middleware/request-id";
import { EXPOSED_HEADERS, setResponseHeaders, withHeaders } from "./middleware/response-headers";

/**
 * Bodies are limited to 1 MiB, except on the routes that stream bytes to R2 and enforce their own
 * limits (file size, Upload-Length, storage quota): exactly these methods and paths, nothing else
 * under their prefixes (e.g. POST /v1/files/:id/signed-url is a JSON route).
 */
const JSON_BODY_LIMIT = 1024 * 1024;
const STREAMING_ROUTES: readonly (readonly [method: string, path: RegExp])[] = [
  ["POST", /^\/v1\/files\/?$/],
  // tus creation (creation-with-upload carries the first chunk) and tus PATCH
  ["POST", /^\/v1\/uploads\/?$/],
  ["PATCH", /^\/v1\/uploads\/[^/]+\/?$/],
];
const isStreamingRoute = (method: string, path: string) =>
  STREAMING_ROUTES.some(([m, p]) => m === method && p.test(path));

/**
 * Routes whose reads must not come from a lagging replica even without a bookmark: a stale read
 * there signs a user out (a just-rotated refresh token looks unknown) or refuses a just-set
 * password. Everything else reads through `openSession` (replica unless the client's bookmark says otherwise).
 */
const PRIMARY_ROUTES = new Set(["/v1/auth/login", "/v1/auth/refresh", "/v1/auth/idtoken", "/v1/auth/mfa/verify"]);

/** The one error renderer: problem+json; a 5xx is logged with its stack. */
function renderError(err: unknown, c: Context<AppEnv>): Response {
  const e = toAppError(err);
  if (e.status >= 500)
    console.error(
      `[${c.get("requestId") ?? "-"}] ${c.req.method} ${c.req.path} failed:`,
      err instanceof Error ? (err.stack ?? err.message) : String(err),
    );
  return problem(e, c.get("requestId"), c.get("clientRequestId"));
}

function buildApp() {
  const app = new Hono<AppEnv>({ router: new IslandRouter() });
  // The admin console: its own app (pages, its own security headers, no CORS), ahead of the API's middleware.
  app.mount("/admin", createConsole(lifecycle).fetch, { replaceRequest: false });

  // Preflights: answered by hono/cors (built once per configuration: the origins come from the
  // env's config); tus adds its discovery headers to the answer under /v1/uploads. Every other
  // answer gets its CORS headers from `setResponseHeaders`.
  const preflightFor = new WeakMap<object, MiddlewareHandler<AppEnv>>();
  const corsPreflight: MiddlewareHandler<AppEnv> = (c, next) => {
    const config = c.get("config");
    let handler = preflightFor.get(config);
    if (!handler) {
      const origins = config.corsOrigins;
      handler = cors({
        origin: origins.includes("*") ? "*" : origins,
        allowHeaders: [
          "Authorization",
          "Content-Type",
          "If-Match",
          "If-None-Match",
          "Idempotency-Key",
          "Range",
          "X-Request-Id",
          BOOKMARK_HEADER,
          "Outpost-Client",
          "Outpost-Install-Id",
          APP_CHECK_HEADER,
          "Tus-Resumable",
          "Upload-Length",
          "Upload-Offset",
          "Upload-Metadata",
          "Upload-Defer-Length",
          "Upload-Concat",
        ],
        exposeHeaders: [...EXPOSED_HEADERS],
        allowMethods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        maxAge: 600,
      }) as MiddlewareHandler<AppEnv>;
      preflightFor.set(config, handler);
    }
    return handler(c, next);
  };
  const preflight = async (c: Context<AppEnv>, next: Next): Promise<void> => {
    const answer = async () => {
      const res = await corsPreflight(c, next);
      if (res) c.res = res;
    };
    await (c.req.path === "/v1/uploads" || c.req.path.startsWith("/v1/uploads/") ? tusDiscovery(c, answer) : answer());
  };

  const jsonBodyLimit = bodyLimit({
    maxSize: JSON_BODY_LIMIT,
    onError: () => {
      throw new AppError("payload_too_large", `JSON bodies are limited to ${JSON_BODY_LIMIT} bytes.`);
    },
  });
  // Before any route: bodies over 1 MiB (but on the streaming routes) → 413; forced updates → 426
  // for an app older than its platform's minVersion (from the cached config, no D1 query); the app
  // check guard (`APP_CHECK_MODE`).
  const checks: MiddlewareHandler<AppEnv> = (c, next) => {
    const guarded = async () => {
      await requireCurrentApp(c, async () => {
        await appCheckGuard(c, next);
      });
    };
    return c.req.raw.body !== null && !isStreamingRoute(c.req.method, c.req.path)
      ? jsonBodyLimit(c, guarded)
      : guarded();
  };

  // The API's one global middleware (each `app.use` costs every request a router entry and a
  // dispatch step). Per request: the server's own id (logs, problem+json `instance`, audit rows; a
  // client's is kept apart), the config, the D1 session and its client; then the preflight answer or
  // the checks and the route; after it, the headers every answer carries.
  app.use(async (c, next) => {
    const { requestId, clientRequestId } = newRequestIds(c.req.header("x-request-id"));
    c.set("requestId", requestId);
    c.set("clientRequestId", clientRequestId);
    const config = getConfig(c.env);
    c.set("config", config);
    c.set("lifecycle", lifecycle);
    const d1 = PRIMARY_ROUTES.has(c.req.path)
      ? c.env.DB.withSession("first-primary")
      : openSession(c.env.DB, c.req.header(BOOKMARK_HEADER));
    c.set("d1", d1);
    c.set("db", createDb(d1));
    c.set("principal", null);
    const isPreflight = c.req.method === "OPTIONS";
    try {
      await (isPreflight ? preflight(c, next) : checks(c, next));
    } catch (err) {
      // Thrown by the checks above (a route's own errors are rendered where they are thrown).
      c.res = renderError(err, c);
    }
    // A 101 proxied from a Durable Object has immutable headers.
    if (c.res.status === 101) return;
    const set = (headers: Headers) =>
      setResponseHeaders(
        headers,
        config,
        c.req.header("origin"),
        clientRequestId ?? requestId,
        d1.getBookmark(),
        isPreflight,
      );
    const res = withHeaders(c.res, set);
    if (res !== c.res) c.res = res;
  });

  app.route("/v1", healthRoutes);
  app.route("/v1/auth", authRoutes);
  app.route("/v1/app-check", appCheckRoutes);
  app.route("/v1/me", accountRoutes);
  app.route("/v1/files", fileRoutes);
  app.route("/v1/uploads", uploadRoutes);
  app.route("/v1/collections", collectionRoutes);
  app.route("/v1/batch", batchRoutes);
  app.route("/v1/rooms", chatRoutes);
  app.route("/v1/blocks", blockRoutes);
  app.route("/v1/teams", teamRoutes);
  app.route("/v1/devices", deviceRoutes);
  app.route("/v1/admin/webhooks", webhookRoutes(requireAdmin));
  app.route("/v1/admin", adminRoutes);
  app.route("/v1/admin", adminReleaseRoutes);
  app.route("/v1/config", configRoutes);
  app.route("/v1/links", linkRoutes);
  app.route("/l", shortLinkPage);
  app.route("/.well-known", wellKnownRoutes);
  app.route("/v1/dev", devRoutes);
  app.route("/v1/app", appRoutes);
  mountDocs(app);

  app.notFound((c) =>
    problem(
      unknownCollection(c.req.path) ?? new AppError("not_found", `No route for ${c.req.method} ${c.req.path}.`),
      c.get("requestId"),
      c.get("clientRequestId"),
    ),
  );
  app.onError(renderError);
  return app;
}

export const app = buildApp();

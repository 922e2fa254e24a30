/**
 * The public release routes: `GET /v1/config` (+ subscribe), `/v1/links`, the short-link page `/l/:code` and the
 * two `.well-known` files of universal links and app links. The admin side lives in the admin feature.
 */
import { type Context, Hono } from "hono";
import { limits } from "../../config";
import { primaryDb } from "../../db";
import type { AppEnv } from "../../env";
import { AppError } from "../../errors";
import { describe, validate } from "../../lib/validation";
import { rateLimitUser } from "../../middleware/rate-limit";
import { optionalAuth, requireSocketUser, requireUser, userOf } from "../auth";
import { CALLER_HEADER, configHubOf, type Upgrader } from "./hub";
import { countOpen, createLink, deleteLink, getLink, linkPage, listLinks, openerOf, toLink } from "./links";
import { CodeParam, ConfigResponse, CreateLinkBody, Link, LinkList, LinksQuery, SubscribeQuery } from "./schemas";
import { configSnapshot } from "./store";
import { CLIENT_HEADER, callerOf, configEtag, INSTALL_HEADER, valueFor, valuesFor, withAccount } from "./values";

const TAG = "Release";

/** The origin short links are made of: PUBLIC_URL, else the request's. */
const apiBaseOf = (c: Context<AppEnv>) => c.get("config").publicUrl ?? new URL(c.req.url).origin;

export const configRoutes = new Hono<AppEnv>()
  .get(
    "/",
    describe({
      tag: TAG,
      summary: "Remote config",
      auth: "optional",
      description:
        "Each key's value for the caller (`Outpost-Client`, `Outpost-Install-Id`, country, account). " +
        "`If-None-Match` → 304. Never 426.",
      responses: {
        200: { description: "The values and the config's version", schema: ConfigResponse },
        304: { description: "Not modified" },
      },
    }),
    optionalAuth,
    async (c) => {
      const db = primaryDb(c.env.DB);
      const snapshot = await configSnapshot(db);
      const caller = await withAccount(db, snapshot, callerOf(c));
      const values = valuesFor(snapshot, caller);
      const etag = configEtag(snapshot.version, values);
      c.header("ETag", etag);
      if (
        c.req
          .header("if-none-match")
          ?.split(/\s*,\s*/)
          .includes(etag)
      )
        return c.body(null, 304);
      return c.json({ values, version: snapshot.version });
    },
  )
  .get(
    "/subscribe",
    describe({
      tag: TAG,
      summary: "Remote config updates (WebSocket)",
      auth: "user",
      description:
        "`?client=ios/2.3.1&installId=` or the headers. Frames: `config` on connect and after each change, " +
        "`ping` → `pong`. Close: 4401 session ended, 4408 no ping for 90 s.",
      responses: {
        101: { description: "Switching protocols" },
        400: { description: "Not a WebSocket upgrade" },
        401: { description: "No or bad token, or its session has ended" },
      },
    }),
    requireSocketUser,
    validate("query", SubscribeQuery),
    async (c) => {
      if (c.req.header("upgrade")?.toLowerCase() !== "websocket")
        throw new AppError("bad_request", "Expected a WebSocket upgrade.");
      const q = c.req.valid("query");
      const client = c.req.header(CLIENT_HEADER) ?? q.client;
      const caller = callerOf(c, client, c.req.header(INSTALL_HEADER) ?? q.installId);
      const { userId, sessionId } = userOf(c);
      // A fresh request: nothing the client sent (such as forged internal headers) reaches the hub.
      const { country, installId } = caller;
      const who: Upgrader = { userId, sessionId, client: caller.client ? client! : null, country, installId };
      const headers = { upgrade: "websocket", [CALLER_HEADER]: JSON.stringify(who) };
      const res = await configHubOf(c.env, userId).fetch(new Request("https://config-hub.internal/", { headers }));
      if (res.status === 401) throw new AppError("unauthorized", "This session has ended.");
      if (res.status !== 101)
        throw new AppError("unavailable", "Retry shortly.", {
          headers: { "retry-after": "1" },
        });
      return res;
    },
  );

export const linkRoutes = new Hono<AppEnv>()
  .post(
    "/",
    describe({
      tag: TAG,
      summary: "Create a short link",
      rateLimited: true,
      responses: { 201: { description: "The link", schema: Link } },
    }),
    requireUser,
    rateLimitUser("LINKS_LIMITER", "links", limits.linksPeriodSec),
    validate("json", CreateLinkBody),
    async (c) => {
      const row = await createLink(c.get("db"), userOf(c).userId, c.req.valid("json"));
      const link = toLink(row, apiBaseOf(c));
      return c.json(link, 201);
    },
  )
  .get(
    "/",
    describe({
      tag: TAG,
      summary: "My short links",
      responses: { 200: { description: "A page of links", schema: LinkList } },
    }),
    requireUser,
    validate("query", LinksQuery),
    async (c) => {
      const q = c.req.valid("query");
      const { page, nextCursor } = await listLinks(c.get("db"), userOf(c).userId, q.cursor, q.limit);
      return c.json({ items: page.map((r) => toLink(r, apiBaseOf(c))), nextCursor });
    },
  )
  .get(
    "/:code",
    describe({
      tag: TAG,
      summary: "Resolve a short link",
      auth: "none",
      responses: {
        200: { description: "`{ code, path, fallbackUrl, title, imageUrl }`" },
        404: { description: "No such link" },
      },
    }),
    validate("param", CodeParam),
    async (c) => {
      const row = await getLink(c.get("db"), c.req.valid("param").code);
      if (!row) throw new AppError("not_found", "No such link.");
      const flush = countOpen(primaryDb(c.env.DB), row.code);
      if (flush) c.executionCtx.waitUntil(flush);
      const { code, path, fallbackUrl, title, imageUrl } = row;
      return c.json({ code, path, fallbackUrl, title, imageUrl });
    },
  )
  .delete(
    "/:code",
    describe({
      tag: TAG,
      summary: "Delete a short link",
      responses: { 204: { description: "Deleted" }, 404: { description: "No such link of the caller's" } },
    }),
    requireUser,
    validate("param", CodeParam),
    async (c) => {
      await deleteLink(c.get("db"), userOf(c).userId, c.req.valid("param").code);
      return c.body(null, 204);
    },
  );

/** `/l/:code`: the short link's page, by user agent (apps with the link set up never reach it). */
export const shortLinkPage = new Hono<AppEnv>().get(
  "/:code",
  describe({
    tag: TAG,
    summary: "Open a short link",
    auth: "none",
    responses: {
      200: { description: "The page with Open Graph tags", contentType: "text/html" },
      302: { description: "To the store or the fallback URL" },
      404: { description: "No such link" },
    },
  }),
  validate("param", CodeParam),
  async (c) => {
    const row = await getLink(c.get("db"), c.req.valid("param").code);
    if (!row) throw new AppError("not_found", "No such link.");
    const opener = openerOf(c.req.header("user-agent"));
    c.header("Cache-Control", "no-store");
    let onward = row.fallbackUrl;
    if (opener === "ios" || opener === "android") {
      const snapshot = await configSnapshot(primaryDb(c.env.DB));
      const store = valueFor(snapshot, `storeUrl.${opener}`, callerOf(c));
      if (typeof store === "string") onward = store;
    }
    if (opener !== "bot") {
      const flush = countOpen(primaryDb(c.env.DB), row.code);
      if (flush) c.executionCtx.waitUntil(flush);
      if (onward) return c.redirect(onward, 302);
    }
    return c.html(linkPage(row, `${apiBaseOf(c)}/l/${row.code}`, c.get("config").appName, onward));
  },
);

/** `/.well-known/*`: the files iOS and Android fetch to let the apps open this domain's links. */
export const wellKnownRoutes = new Hono<AppEnv>()
  .get(
    "/apple-app-site-association",
    describe({
      tag: TAG,
      summary: "Universal links and passkeys file",
      auth: "none",
      responses: { 200: { description: "The association file" } },
    }),
    (c) => {
      const { appleAppIds, paths } = c.get("config").deepLinks;
      c.header("Cache-Control", "public, max-age=3600");
      return c.json({
        applinks: { details: [{ appIDs: appleAppIds, components: paths.map((p) => ({ "/": p })) }] },
        // Passkeys on iOS: the apps that may use this domain's credentials (docs/passkeys.md).
        webcredentials: { apps: appleAppIds },
      });
    },
  )
  .get(
    "/assetlinks.json",
    describe({
      tag: TAG,
      summary: "App links file",
      auth: "none",
      responses: { 200: { description: "The statement list" } },
    }),
    (c) => {
      const { androidApps } = c.get("config").deepLinks;
      c.header("Cache-Control", "public, max-age=3600");
      return c.json(
        androidApps.map((a) => ({
          relation: ["delegate_permission/common.handle_all_urls", "delegate_permission/common.get_login_creds"],
          target: { namespace: "android_app", package_name: a.packageName, sha256_cert_fingerprints: a.fingerprints },
        })),
      );
    },
  );

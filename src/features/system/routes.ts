/** Health, the OpenAPI document, the interactive reference, and the development outbox. */
import { Hono, type MiddlewareHandler } from "hono";
import { openAPIRouteHandler } from "hono-openapi";
import * as v from "valibot";
import type { AppEnv } from "../../env";
import { AppError } from "../../errors";
import { describe } from "../../lib/validation";
import { devOutboxEnabled, listOutbox } from "../mail";

const Health = v.object({ status: v.literal("ok"), version: v.string() });

export const healthRoutes = new Hono<AppEnv>().get(
  "/health",
  describe({
    tag: "System",
    summary: "Liveness and D1 reachability",
    auth: "none",
    responses: { 200: { description: "Healthy", schema: Health }, 503: { description: "D1 unreachable" } },
  }),
  async (c) => {
    try {
      await c.get("d1").prepare("SELECT 1").first();
    } catch {
      throw new AppError("unavailable", "The database is not reachable.");
    }
    return c.json({ status: "ok" as const, version: c.get("config").version });
  },
);

export const devRoutes = new Hono<AppEnv>().get(
  "/outbox",
  describe({
    tag: "Development",
    summary:
      "Mail sent in local development " +
      "(served only when ENVIRONMENT is development or test and no mail provider is set)",
    auth: "none",
    responses: {
      200: {
        description: "Newest first",
        schema: v.object({
          items: v.array(
            v.object({ id: v.string(), to: v.string(), subject: v.string(), text: v.string(), createdAt: v.string() }),
          ),
        }),
      },
    },
  }),
  async (c) => {
    if (!devOutboxEnabled(c.get("config"))) throw new AppError("not_found");
    const items = await listOutbox(c.get("db"));
    return c.json({ items });
  },
);

/** Where the static-assets directory serves the API reference's browser bundle (scripts/docs-assets.mjs). */
const DOCS_SCRIPT = "/docs/scalar.js";

/** Mounts `/v1/openapi.json` and `/docs` for `app`; the document is built from the routes' own schemas. */
export function mountDocs(app: Hono<AppEnv>) {
  app.get(
    "/v1/openapi.json",
    openAPIRouteHandler(app, {
      documentation: {
        openapi: "3.1.0",
        info: {
          title: "Outpost API",
          version: "1",
          description:
            "Backend for mobile apps: accounts, app data, media, chat, push. " +
            "Errors are RFC 9457 problem+json with a stable `code`.",
        },
        servers: [{ url: "/" }],
        components: {
          securitySchemes: {
            bearerAuth: {
              type: "http",
              scheme: "bearer",
              bearerFormat: "JWT",
              description: "An access token, or the service key for server-to-server calls.",
            },
          },
        },
      },
      exclude: ["/v1/openapi.json", "/docs"],
      // Routes that look like files are documented too (/.well-known/assetlinks.json).
      excludeStaticFile: false,
    }),
  );
  // The reference's script is a static asset of this Worker (public/docs/scalar.js), not a CDN
  // file, so the page works offline in local development; system fonts, for the same reason.
  // Imported on the first request for the page, so no API request ever loads it. (The OpenAPI
  // document is built on its first request too, and kept; its JSON Schema converter is a lazy
  // import inside hono-openapi.)
  let docsPage: MiddlewareHandler<AppEnv> | undefined;
  app.get("/docs", async (c, next) => {
    if (!docsPage) {
      const { Scalar } = await import("@scalar/hono-api-reference");
      docsPage = Scalar({
        url: "/v1/openapi.json",
        pageTitle: "Outpost API",
        cdn: DOCS_SCRIPT,
        withDefaultFonts: false,
      }) as MiddlewareHandler<AppEnv>;
    }
    return docsPage(c, next);
  });
}

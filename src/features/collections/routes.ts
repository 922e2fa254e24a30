/**
 * `/v1/collections/:name/*`: one sub-app per declared collection, so each route validates with
 * (and documents in OpenAPI) that collection's own record shape. Unknown names are 404.
 */
import { Hono } from "hono";
import { every } from "hono/combine";
import { createMiddleware } from "hono/factory";
import { limits } from "../../config";
import type { AppEnv } from "../../env";
import { AppError } from "../../errors";
import { describe, IdParam, validate } from "../../lib/validation";
import { optionalAuth } from "../auth";
import { idempotency } from "../../middleware/idempotency";
import { rateLimitAnonymous } from "../../middleware/rate-limit";
import type { Rule } from "./define";
import { type Collection, collections, findCollection } from "./registry";
import { collectionSchemas } from "./schemas";
import * as svc from "./service";
import { etag } from "./service";

/** `If-Match` → the versions it allows; null = any (absent or `*`). A tag that is not `"<n>"` matches nothing. */
function ifMatchVersions(header: string | undefined): number[] | null {
  if (header === undefined) return null;
  const tags = header.split(",").map((t) => t.trim());
  if (tags.includes("*")) return null;
  if (tags.length > limits.collectionsIfMatchMax) {
    throw new AppError("validation_failed", `If-Match may list at most ${limits.collectionsIfMatchMax} entity tags.`, {
      errors: [{ path: "If-Match", message: "too many entity tags" }],
    });
  }
  return tags.flatMap((t) => {
    const m = /^"(\d{1,15})"$/.exec(t);
    return m ? [Number(m[1])] : [];
  });
}

/** `If-None-Match` uses weak comparison: `W/"3"` matches version 3 too. */
function noneMatch(header: string | undefined, version: number): boolean {
  if (!header) return false;
  return header.split(",").some((t) => {
    const tag = t.trim();
    return tag === "*" || tag.replace(/^W\//, "") === etag(version);
  });
}

const authOf = (rule: Rule) => (rule === "public" ? "optional" : "user") as "optional" | "user";

/** Only `public` actions take anonymous callers; for the others a missing token is a 401 before the body is read. */
const requireCaller = createMiddleware<AppEnv>(async (c, next) => {
  if (!c.var.principal) throw new AppError("unauthorized", "Send Authorization: Bearer <accessToken>.");
  await next();
});
const callerFor = (rule: Rule) => (rule === "public" ? optionalAuth : every(optionalAuth, requireCaller));

/** Lists and change feeds without a token: per IP, `LIST_LIMITER` in wrangler.toml (60 per 60 s). */
const anonymousLists = rateLimitAnonymous("LIST_LIMITER", "list", 60);

function recordRoutes(col: Collection) {
  const S = collectionSchemas(col);
  const tag = `Collection: ${col.name}`;
  const r = col.rules;
  const rule = (action: string, x: Rule) => `Rule for ${action}: \`${x}\` (the service key bypasses rules).`;
  const location = (id: string) => `/v1/collections/${col.name}/records/${id}`;

  return new Hono<AppEnv>()
    .post(
      "/records",
      describe({ tag, summary: `Create a ${col.name} record`, auth: authOf(r.create), description: `${rule("create", r.create)} Send \`Idempotency-Key\` to make a retry safe.`, responses: { 201: { description: "The record, version 1", schema: S.record }, 409: { description: "conflict: the Idempotency-Key is in use or was used for another request" } } }),
      callerFor(r.create),
      idempotency,
      validate("json", S.create),
      async (c) => {
        const rec = await svc.createRecord(c.var.db, col, c.var.principal, c.req.valid("json"));
        return c.json(rec, 201, { etag: etag(rec.version), location: location(rec.id) });
      },
    )
    .get(
      "/records",
      describe({ tag, summary: `List ${col.name} records`, auth: authOf(r.list), description: `${rule("list", r.list)} \`where\` is JSON over declared fields and ownerId, createdAt, updatedAt with $eq, $ne, $gt, $gte, $lt, $lte, $in, and $contains on searchable fields (${col.searchable.join(", ") || "none"}); \`sort\` is one of ${col.sortable.join(", ")}, \`-field\` for descending (default -createdAt). A list across all owners filters only on ownerId and the sort field unless \`where\` names one ownerId. Without a token: rate limited per IP (429).`, responses: { 200: { description: "A page of records", schema: S.page }, 429: { description: "rate_limited (requests without a token)" } } }),
      callerFor(r.list),
      anonymousLists,
      validate("query", S.listQuery),
      async (c) => c.json(await svc.listRecords(c.var.db, col, c.var.principal, c.req.valid("query"))),
    )
    .get(
      "/records/:id",
      describe({ tag, summary: `Read a ${col.name} record`, auth: authOf(r.read), description: `${rule("read", r.read)} A record the caller may not read is a 404.`, responses: { 200: { description: "The record, with ETag", schema: S.record }, 304: { description: "Not modified (If-None-Match)" }, 404: { description: "not_found" } } }),
      callerFor(r.read),
      validate("param", IdParam),
      async (c) => {
        const rec = await svc.getRecord(c.var.db, col, c.var.principal, c.req.valid("param").id);
        if (noneMatch(c.req.header("if-none-match"), rec.version)) return c.body(null, 304, { etag: etag(rec.version) });
        return c.json(rec, 200, { etag: etag(rec.version) });
      },
    )
    .patch(
      "/records/:id",
      describe({ tag, summary: `Change fields of a ${col.name} record`, auth: authOf(r.update), description: `${rule("update", r.update)} Fields are merged; version + 1. With \`If-Match: "<version>"\` a stale version is a 412.`, responses: { 200: { description: "The record", schema: S.record }, 403: { description: "forbidden: readable but not yours to change" }, 404: { description: "not_found" }, 412: { description: "version_conflict" } } }),
      callerFor(r.update),
      validate("param", IdParam),
      validate("json", S.patch),
      async (c) => {
        const rec = await svc.updateRecord(c.var.db, col, c.var.principal, c.req.valid("param").id, c.req.valid("json"), ifMatchVersions(c.req.header("if-match")));
        return c.json(rec, 200, { etag: etag(rec.version) });
      },
    )
    .put(
      "/records/:id",
      describe({ tag, summary: `Replace a ${col.name} record`, auth: authOf(r.update), description: `${rule("update", r.update)} Omitted fields take their defaults; version + 1. With \`If-Match: "<version>"\` a stale version is a 412.`, responses: { 200: { description: "The record", schema: S.record }, 403: { description: "forbidden: readable but not yours to change" }, 404: { description: "not_found" }, 412: { description: "version_conflict" } } }),
      callerFor(r.update),
      validate("param", IdParam),
      validate("json", S.replace),
      async (c) => {
        const rec = await svc.updateRecord(c.var.db, col, c.var.principal, c.req.valid("param").id, c.req.valid("json"), ifMatchVersions(c.req.header("if-match")));
        return c.json(rec, 200, { etag: etag(rec.version) });
      },
    )
    .delete(
      "/records/:id",
      describe({ tag, summary: `Delete a ${col.name} record`, auth: authOf(r.delete), description: `${rule("delete", r.delete)} A tombstone stays in the change feed. \`If-Match\` is honoured.`, responses: { 204: { description: "Deleted" }, 403: { description: "forbidden: readable but not yours to delete" }, 404: { description: "not_found" }, 412: { description: "version_conflict" } } }),
      callerFor(r.delete),
      validate("param", IdParam),
      async (c) => {
        await svc.deleteRecord(c.var.db, col, c.var.principal, c.req.valid("param").id, ifMatchVersions(c.req.header("if-match")));
        return c.body(null, 204);
      },
    )
    .get(
      "/changes",
      describe({ tag, summary: `Sync feed of ${col.name}`, auth: authOf(r.list), description: `Every record created, changed or deleted after \`since\` that the caller may read, oldest first; deleted ones as \`{ id, deleted: true, version }\`. Keep \`nextCursor\` and poll again; no \`since\` = from the start. Without a token: rate limited per IP (429).`, responses: { 200: { description: "Changes", schema: S.changes }, 429: { description: "rate_limited (requests without a token)" } } }),
      callerFor(r.list),
      anonymousLists,
      validate("query", S.changesQuery),
      async (c) => c.json(await svc.changesSince(c.var.db, col, c.var.principal, c.req.valid("query"))),
    );
}

export const collectionRoutes = new Hono<AppEnv>();
for (const col of collections) collectionRoutes.route(`/${col.name}`, recordRoutes(col));
collectionRoutes.all("/:name/*", (c) => {
  const name = c.req.param("name");
  if (findCollection(name)) throw new AppError("not_found", `No route for ${c.req.method} ${c.req.path}.`);
  throw new AppError("not_found", `No collection named ${JSON.stringify(name)}.`);
});

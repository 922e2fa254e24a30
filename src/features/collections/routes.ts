/**
 * `/v1/collections/:name/*`: one sub-app per declared collection, so each route validates with
 * (and documents in OpenAPI) that collection's own record shape. Unknown names are 404.
 */
import { type Context, Hono } from "hono";
import { createFactory } from "hono/factory";
import { limits } from "../../config";
import type { AppEnv } from "../../env";
import { AppError } from "../../errors";
import { describe, IdParam, validate } from "../../lib/validation";
import { idempotency } from "../../middleware/idempotency";
import { rateLimitAnonymous } from "../../middleware/rate-limit";
import { serviceAudit } from "../../middleware/service-audit";
import { optionalAuth, requireAuth, requireSocketUser, userOf } from "../auth";
import { noTeam } from "../teams";
import { etag } from "./access";
import { applyBatch, BatchBody, BatchResult } from "./batch";
import { type RuleSpec, rulesOf } from "./define";
import { hubKeyFor, hubStub, LIVE_HEADERS, liveScope } from "./live";
import { getRecord, listRecords } from "./reads";
import { type Collection, collections, findCollection } from "./registry";
import { collectionSchemas } from "./schemas";
import { searchRecords } from "./search";
import { changesSince, sinceOf } from "./service";
import { createRecord, deleteRecord, updateRecord, type Writer } from "./writes";

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

/** Builds typed handler chains that a route spreads after its path. */
const handlers = createFactory<AppEnv>();

const isPublic = (rule: RuleSpec) => rulesOf(rule).includes("public");
const authOf = (rule: RuleSpec) => (isPublic(rule) ? "optional" : "user") as "optional" | "user";

/**
 * Only `public` actions take anonymous callers; for the others a missing token is a 401 before the
 * body is read (`requireAuth`: a user's token or the service key, as `optionalAuth` with a token).
 */
const callerFor = (rule: RuleSpec) => (isPublic(rule) ? optionalAuth : requireAuth);

/**
 * The request as a writer: its database, its `waitUntil` for the step after the commit, and for the
 * service key an audit row in each write's batch.
 */
const writerOf = (c: Context<AppEnv>): Writer => ({
  db: c.get("db"),
  env: c.env,
  waitUntil: (work) => c.executionCtx.waitUntil(work),
  audit: serviceAudit(c),
});

const isUpgrade = (c: Context<AppEnv>) => c.req.header("upgrade")?.toLowerCase() === "websocket";

/** Lists and change feeds without a token: per IP, `LIST_LIMITER` in wrangler.toml (60 per 60 s). */
const anonymousLists = rateLimitAnonymous("LIST_LIMITER", "list", 60);

/** Whose changes a collection's live subscription carries, by its scope (for the route's description). */
const liveWho = {
  own: "their own records",
  all: "everyone's records",
  team: "the records of the caller's teams, or of one with `?teamId=` (closed with 4403 when the caller leaves it)",
  none: "nobody but the service key: subscribing is refused",
} as const;

function recordRoutes(col: Collection) {
  const schemas = collectionSchemas(col);
  const tag = `Collection: ${col.name}`;
  const r = col.rules;
  const rule = (action: string, x: RuleSpec) =>
    `Rule for ${action}: \`${typeof x === "string" ? x : JSON.stringify(x)}\` (the service key bypasses rules).`;
  const location = (id: string) => `/v1/collections/${col.name}/records/${id}`;

  /** PATCH merges the body's fields, PUT replaces the record: one write, two body schemas. */
  const [merged, replaced] = ["Fields are merged", "Omitted fields take their defaults"];
  const ifMatchNote = 'With `If-Match: "<version>"` a stale version is a 412.';
  const updateHandlers = (mode: "merge" | "replace") =>
    handlers.createHandlers(
      describe({
        tag,
        summary: mode === "merge" ? `Change fields of a ${col.name} record` : `Replace a ${col.name} record`,
        auth: authOf(r.update),
        description: `${rule("update", r.update)} ${mode === "merge" ? merged : replaced}; version + 1. ${ifMatchNote}`,
        responses: {
          200: { description: "The record", schema: schemas.record },
          403: { description: "forbidden: readable but not yours to change" },
          404: { description: "not_found" },
          412: { description: "version_conflict" },
        },
      }),
      callerFor(r.update),
      validate("param", IdParam),
      validate("json", mode === "merge" ? schemas.patch : schemas.replace),
      async (c) => {
        const { record } = await updateRecord(
          writerOf(c),
          col,
          c.get("principal"),
          c.req.valid("param").id,
          c.req.valid("json"),
          ifMatchVersions(c.req.header("if-match")),
        );
        return c.json(record, 200, { etag: etag(record.version) });
      },
    );

  return new Hono<AppEnv>()
    .post(
      "/records",
      describe({
        tag,
        summary: `Create a ${col.name} record`,
        auth: authOf(r.create),
        description:
          `${rule("create", r.create)} Send \`Idempotency-Key\` to make a retry safe. \`id\` may be a UUID made ` +
          `on the device (any version, RFC 9562 variant; stored lowercase), so an app can create records offline ` +
          `and link them: the same \`id\` again from the same owner with the same fields answers 200 with the ` +
          `stored record and writes nothing; an \`id\` taken otherwise (another owner, other fields, a deleted ` +
          `record) is a 409.`,
        responses: {
          201: { description: "The record, version 1", schema: schemas.record },
          200: {
            description: "This id was already created by the caller with the same fields: the stored record",
            schema: schemas.record,
          },
          409: {
            description: "conflict: the id is taken, or the Idempotency-Key is in use or was used for another request",
          },
        },
      }),
      callerFor(r.create),
      idempotency,
      validate("json", schemas.create),
      async (c) => {
        const w = await createRecord(writerOf(c), col, c.get("principal"), c.req.valid("json"));
        return c.json(w.record, w.created ? 201 : 200, {
          etag: etag(w.record.version),
          location: location(w.record.id),
        });
      },
    )
    .get(
      "/records",
      describe({
        tag,
        summary: `List ${col.name} records`,
        auth: authOf(r.list),
        description:
          `${rule("list", r.list)} \`where\` is JSON over declared fields and ownerId, createdAt, updatedAt with ` +
          `$eq, $ne, $gt, $gte, $lt, $lte, $in, and $contains on searchable fields ` +
          `(${col.searchable.join(", ") || "none"}); \`sort\` is one of ${col.sortable.join(", ")}, \`-field\` ` +
          `for descending (default -createdAt). A list across all owners filters only on ownerId and the sort ` +
          `field unless \`where\` names one ownerId. \`count=true\` adds \`total\`; \`expand=<field>,…\` adds each ` +
          `item's referenced records (see the read). \`search=<text>\` matches the words of the searchable fields ` +
          `(${col.searchable.join(", ") || "none"}; diacritics folded, the last word as a prefix), best match ` +
          `first unless \`sort\` is given, with \`where\` and the rules. Without a token: rate limited per IP (429).`,
        responses: {
          200: { description: "A page of records", schema: schemas.page },
          429: { description: "rate_limited (requests without a token)" },
        },
      }),
      callerFor(r.list),
      anonymousLists,
      validate("query", schemas.listQuery),
      async (c) => {
        const q = c.req.valid("query");
        if (q.search === undefined) return c.json(await listRecords(c.get("db"), col, c.get("principal"), q));
        // Best match first unless the caller asked for an order.
        const ranked = c.req.query("sort") === undefined;
        return c.json(await searchRecords(c.get("db"), col, c.get("principal"), { ...q, search: q.search, ranked }));
      },
    )
    .get(
      "/records/:id",
      describe({
        tag,
        summary: `Read a ${col.name} record`,
        auth: authOf(r.read),
        description:
          `${rule("read", r.read)} A record the caller may not read is a 404. \`expand=<field>,…\` adds ` +
          "`expand: { <field>: record | null }` for reference fields (null: missing or not readable; a user " +
          "reference as `{ id, name, avatarFileId }`), read in the same round trip; such an answer has no ETag.",
        responses: {
          200: { description: "The record, with ETag", schema: schemas.record },
          304: { description: "Not modified (If-None-Match)" },
          404: { description: "not_found" },
        },
      }),
      callerFor(r.read),
      validate("param", IdParam),
      validate("query", schemas.recordQuery),
      async (c) => {
        const expand = c.req.valid("query").expand ?? [];
        const rec = await getRecord(c.get("db"), col, c.get("principal"), c.req.valid("param").id, expand);
        // The expanded records change without the record's version: no entity tag for such an answer.
        if (expand.length > 0) return c.json(rec, 200);
        if (noneMatch(c.req.header("if-none-match"), rec.version))
          return c.body(null, 304, { etag: etag(rec.version) });
        return c.json(rec, 200, { etag: etag(rec.version) });
      },
    )
    .patch("/records/:id", ...updateHandlers("merge"))
    .put("/records/:id", ...updateHandlers("replace"))
    .delete(
      "/records/:id",
      describe({
        tag,
        summary: `Delete a ${col.name} record`,
        auth: authOf(r.delete),
        description: `${rule("delete", r.delete)} A tombstone stays in the change feed. \`If-Match\` is honoured.`,
        responses: {
          204: { description: "Deleted" },
          403: { description: "forbidden: readable but not yours to delete" },
          404: { description: "not_found" },
          412: { description: "version_conflict" },
        },
      }),
      callerFor(r.delete),
      validate("param", IdParam),
      async (c) => {
        await deleteRecord(
          writerOf(c),
          col,
          c.get("principal"),
          c.req.valid("param").id,
          ifMatchVersions(c.req.header("if-match")),
        );
        return c.body(null, 204);
      },
    )
    .get(
      "/changes",
      describe({
        tag,
        summary: `Sync feed of ${col.name}`,
        auth: authOf(r.list),
        description:
          `Every record created, changed or deleted after \`since\` that the caller may read, oldest first; ` +
          `deleted ones as \`{ id, deleted: true, version }\`. Keep \`nextCursor\` and poll again; no \`since\` ` +
          `= from the start. Tombstones are kept ${limits.changeLogRetentionDays} days: a \`since\` older than a ` +
          `pruned one is 410 \`resync_required\` (sync again without \`since\`). Without a token: rate limited ` +
          `per IP (429).`,
        responses: {
          200: { description: "Changes", schema: schemas.changes },
          410: { description: "resync_required: the cursor is older than the retention; sync again without one" },
          429: { description: "rate_limited (requests without a token)" },
        },
      }),
      callerFor(r.list),
      anonymousLists,
      validate("query", schemas.changesQuery),
      async (c) => c.json(await changesSince(c.get("db"), col, c.get("principal"), c.req.valid("query"))),
    )
    .get(
      "/subscribe",
      describe({
        tag,
        summary: `Live changes of ${col.name} (WebSocket)`,
        auth: "user",
        description:
          `A WebSocket of a user's session (auth: \`?ticket=\` from \`POST /v1/auth/socket-ticket\`, the ` +
          `\`Authorization\` header, or \`?token=\`). First every change after \`since\` that the caller may ` +
          `list (${liveWho[liveScope(col)]}), ` +
          `as \`{ "type": "change", "cursor", "item" }\` (\`item\` as \`/changes\` returns it, tombstones ` +
          `included), then \`{ "type": "ready", "cursor" }\`, then each new change once, in cursor order. ` +
          `Reconnect with the last cursor seen: nothing is missed or repeated. \`{ "type": "ping" }\` → \`{ ` +
          `"type": "pong" }\`. A cursor past retention gets \`{ "type": "error", "code": "resync_required" }\` ` +
          `and close 4410. Close codes: 4401 the session ended, 4408 heartbeat timeout (ping at least every ` +
          `${limits.liveHeartbeatTimeoutSec / 3} s), 4410 resync required, 1011 replay failed (reconnect).`,
        responses: {
          101: { description: "Switching protocols" },
          400: { description: "Not a WebSocket upgrade, or a bad cursor" },
          401: { description: "No or bad token, or its session has ended" },
          403: { description: "Users may not list this collection, or the service key (sockets belong to sessions)" },
        },
      }),
      requireSocketUser,
      validate("query", schemas.subscribeQuery),
      async (c) => {
        if (!isUpgrade(c)) throw new AppError("bad_request", "Expected a WebSocket upgrade (Upgrade: websocket).");
        if (liveScope(col) === "none")
          throw new AppError("forbidden", `Only the service key may list ${col.name}; it has no live subscriptions.`);
        const q = c.req.valid("query");
        const since = q.since === undefined ? null : sinceOf(q.since);
        const { userId, sessionId } = userOf(c);
        const key = hubKeyFor(col, userId, q.teamId);
        // A fresh request: nothing the client sent (such as forged internal headers) reaches the hub.
        const headers = new Headers({
          upgrade: "websocket",
          [LIVE_HEADERS.user]: userId,
          [LIVE_HEADERS.session]: sessionId,
          [LIVE_HEADERS.key]: JSON.stringify(key),
        });
        if (since !== null) headers.set(LIVE_HEADERS.since, String(since));
        const res = await hubStub(c.env, key).fetch(
          new Request("https://collection-hub.internal/subscribe", { headers }),
        );
        // The hub checked that the token's session has not ended (logout, revocation, password change).
        if (res.status === 401) throw new AppError("unauthorized", "This session has ended; sign in again.");
        // A team's subscription: the hub found the caller is not a member (with the role `list` needs).
        if (res.status === 404) throw noTeam();
        if (res.status !== 101)
          throw new AppError("unavailable", "Live data is unavailable right now; retry shortly.", {
            headers: { "retry-after": "1" },
          });
        return res;
      },
    );
}

export const collectionRoutes = new Hono<AppEnv>();
for (const col of collections) collectionRoutes.route(`/${col.name}`, recordRoutes(col));

/**
 * The 404 of a path under /v1/collections/ that no route matched: an undeclared collection says
 * so (null otherwise). Asked by the app's not-found handler rather than by a catch-all route, which
 * every collection request would otherwise also match in the router.
 */
export function unknownCollection(path: string): AppError | null {
  const m = /^\/v1\/collections\/([^/]+)(\/|$)/.exec(path);
  if (!m) return null;
  let name: string;
  try {
    name = decodeURIComponent(m[1]!);
  } catch {
    name = m[1]!;
  }
  return findCollection(name) ? null : new AppError("not_found", `No collection named ${JSON.stringify(name)}.`);
}

/**
 * `POST /v1/batch` (mounted by router.ts): several writes across collections, all or nothing, each
 * checked as the single routes check it. See batch.ts.
 */
export const batchRoutes = new Hono<AppEnv>().post(
  "/",
  describe({
    tag: "Collections",
    summary: "Apply up to 50 writes at once, all or nothing",
    description:
      `\`{ operations: [{ op: "create" | "update" | "replace" | "delete", collection, id?, ifMatch?, data? }] ` +
      `}\`, 1 to ${limits.batchMaxOperations} operations, applied in order in one D1 transaction: each sees the ` +
      `ones before it (create a record with a client \`id\`, then update it). Each is checked against its ` +
      `collection's rule and schema, and \`ifMatch\` (a version, or its ETag) as \`If-Match\` is. Answers 200 ` +
      `\`{ results }\` (the record, or \`{ id, deleted: true }\`, per operation), or the error of the first ` +
      `operation that fails, with \`errors[0].path\` = \`operations.<index>\` ` +
      `(\`operations.<index>.data.<field>\` for invalid data), and nothing written. Send \`Idempotency-Key\` to ` +
      `make a retry safe.`,
    responses: {
      200: { description: "Every operation applied", schema: BatchResult },
      403: { description: "forbidden (operations.<index>)" },
      404: { description: "not_found (operations.<index>)" },
      409: { description: "conflict: a client id is taken, or the Idempotency-Key is in use" },
      412: { description: "version_conflict (operations.<index>)" },
    },
  }),
  requireAuth,
  idempotency,
  validate("json", BatchBody),
  async (c) => {
    const p = c.get("principal");
    if (!p) throw new AppError("unauthorized");
    const results = await applyBatch(writerOf(c), p, c.req.valid("json").operations);
    return c.json({ results }, 200);
  },
);

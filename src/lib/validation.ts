/**
 * The one validation layer: valibot schemas validate every body, query and param through
 * `validate()`, and the same schemas feed the OpenAPI document (hono-openapi reads them off the
 * middleware). Failures become 400 `validation_failed` with `errors[{ path, message }]`.
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { ValidationTargets } from "hono";
import { describeRoute, resolver, uniqueSymbol, validator } from "hono-openapi";
import * as v from "valibot";
import { AppError, type FieldError } from "../errors";

function issuePath(target: string, issue: StandardSchemaV1.Issue): string {
  const parts = (issue.path ?? []).map((p) => String(typeof p === "object" && p !== null ? p.key : p));
  return parts.length ? parts.join(".") : target;
}

/** Turns standard-schema issues into the contract's `errors` array. */
function toFieldErrors(target: string, issues: readonly StandardSchemaV1.Issue[]): FieldError[] {
  return issues.map((i) => ({ path: issuePath(target, i), message: i.message }));
}

const JSON_TYPE = /^application\/([a-z0-9.+-]+\+)?json\s*(;|$)/i;

/**
 * JSON bodies must be sent as JSON and be objects. Hono's json validator reads a body with another
 * Content-Type as `{}`, and valibot object schemas accept arrays: either would turn a client's
 * change into an empty one (a PATCH that drops it, a PUT back to defaults). An empty body without
 * a Content-Type stays `{}` (action routes like logout).
 */
async function assertJsonObjectBody(req: {
  header(name: string): string | undefined;
  text(): Promise<string>;
  json(): Promise<unknown>;
}) {
  if (!JSON_TYPE.test(req.header("content-type") ?? "")) {
    if ((await req.text()).length > 0)
      throw new AppError("unsupported_media_type", "Send the body as JSON (Content-Type: application/json).");
    return;
  }
  const body = await req.json();
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new AppError("validation_failed", "The body is not valid.", {
      errors: [{ path: "body", message: "must be a JSON object" }],
    });
  }
}

/** Validates `target` with `schema`; the handler reads the typed result with `c.req.valid(target)`. */
export function validate<S extends StandardSchemaV1, T extends keyof ValidationTargets>(target: T, schema: S) {
  return validator(target, schema, async (result, c) => {
    if (target === "json") await assertJsonObjectBody(c.req);
    if (!result.success) {
      throw new AppError("validation_failed", `The ${target === "json" ? "body" : target} is not valid.`, {
        errors: toFieldErrors(target === "json" ? "body" : target, result.error),
      });
    }
  });
}

// --- shared schemas ----------------------------------------------------------------------

const ProblemSchema = v.object({
  type: v.string(),
  title: v.string(),
  status: v.number(),
  detail: v.string(),
  code: v.string(),
  errors: v.optional(v.array(v.object({ path: v.string(), message: v.string() }))),
  instance: v.optional(v.string()),
});

/** An empty JSON object body (`{}`), for action routes; extra fields are rejected. */
export const EmptyBody = v.strictObject({});

/** A string id path parameter (ids are UUIDv7 but stay opaque to clients). */
export const IdParam = v.strictObject({ id: v.pipe(v.string(), v.minLength(1), v.maxLength(64)) });

/** `?limit=` parsed from the query string, bounded to [1, max]. */
export const limitParam = (def: number, max: number) =>
  v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d{1,4}$/, "limit must be a whole number"),
      v.transform(Number),
      v.minValue(1),
      v.maxValue(max),
    ),
    String(def),
  );

/** An opaque list cursor. */
export const cursorParam = v.optional(v.pipe(v.string(), v.maxLength(512)));

export type Responses = Record<string, { description: string; schema?: StandardSchemaV1; contentType?: string }>;

const problemResponse = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: resolver(ProblemSchema) } },
});

/**
 * Documents a route: summary, tag, auth and responses (valibot schemas). Common error answers
 * (401 for authed routes, 429 where rate limited) are added from the flags.
 */
export function describe(spec: {
  tag: string;
  summary: string;
  description?: string;
  auth?: "user" | "optional" | "service" | "none";
  rateLimited?: boolean;
  responses: Responses;
}) {
  const responses: Record<string, unknown> = {};
  for (const [status, r] of Object.entries(spec.responses)) {
    responses[status] = r.schema
      ? {
          description: r.description,
          content: { [r.contentType ?? "application/json"]: { schema: resolver(r.schema) } },
        }
      : r.contentType
        ? { description: r.description, content: { [r.contentType]: { schema: { type: "string", format: "binary" } } } }
        : { description: r.description };
  }
  const auth = spec.auth ?? "user";
  if (auth === "user" || auth === "service") responses["401"] ??= problemResponse("Missing, invalid or expired token");
  if (spec.rateLimited) responses["429"] ??= problemResponse("Rate limited; see Retry-After");
  responses.default ??= problemResponse("Error (problem+json)");
  const described = describeRoute({
    tags: [spec.tag],
    summary: spec.summary,
    ...(spec.description ? { description: spec.description } : {}),
    ...(auth === "none" ? {} : { security: auth === "optional" ? [{}, { bearerAuth: [] }] : [{ bearerAuth: [] }] }),
    responses: responses as never,
  });
  // hono-openapi reads the spec from the middleware's symbol; its own middleware is an `async`
  // wrapper around `next()`, one more promise per request for nothing: this one hands `next` on.
  const openApiSpec = (described as unknown as Record<typeof uniqueSymbol, unknown>)[uniqueSymbol];
  return Object.assign(((_c, next) => next()) as typeof described, { [uniqueSymbol]: openApiSpec });
}

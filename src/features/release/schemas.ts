/** Request and response schemas of the release routes (they validate, type the handlers and feed the OpenAPI document). */
import * as v from "valibot";
import { limits } from "../../config";
import { cursorParam, limitParam } from "../../lib/validation";
import type { ConfigValue } from "./define";
import { VersionText, When } from "./rules";
import { codeDefaults } from "./store";

/** A JSON value (the schema of one whose code default is not a plain scalar). */
const Json = v.custom<ConfigValue>(() => true);

/** The schema of a key's values, from its code default's type (so the SDK's types follow the code defaults). */
function schemaOfDefault(def: ConfigValue) {
  if (typeof def === "string") return v.string();
  if (typeof def === "number") return v.number();
  if (typeof def === "boolean") return v.boolean();
  return Json;
}

/** `GET /v1/config`: every declared key, typed by its code default (the reserved keys: string or null). */
export const ConfigResponse = v.object({
  values: v.object(
    Object.fromEntries(
      Object.entries(codeDefaults).map(([key, def]) => [
        key,
        def === null ? v.nullable(v.string()) : schemaOfDefault(def),
      ]),
    ),
  ),
  version: v.number(),
});

export const SubscribeQuery = v.object({
  client: v.optional(v.pipe(v.string(), v.maxLength(100))),
  installId: v.optional(v.pipe(v.string(), v.maxLength(128))),
});

const Rule = v.strictObject({ when: When, value: Json });

export const PutConfigBody = v.strictObject({
  value: Json,
  rules: v.optional(v.pipe(v.array(Rule), v.maxLength(50)), []),
});

export const KeyParam = v.strictObject({ key: v.pipe(v.string(), v.minLength(1), v.maxLength(64)) });

export const AdminConfigKey = v.object({
  key: v.string(),
  value: Json,
  rules: v.array(v.object({ when: When, value: Json })),
  updatedAt: v.nullable(v.string()),
});

const AdminConfigEntry = v.object({
  ...AdminConfigKey.entries,
  default: Json,
  /** False: no admin value, the code default applies. */
  set: v.boolean(),
});
export const AdminConfigList = v.object({ items: v.array(AdminConfigEntry), version: v.number() });

export const PreviewQuery = v.strictObject({
  platform: v.optional(v.pipe(v.string(), v.regex(/^[a-z][a-z0-9-]{0,15}$/))),
  version: v.optional(VersionText),
  userId: v.optional(v.pipe(v.string(), v.maxLength(64))),
  installId: v.optional(v.pipe(v.string(), v.maxLength(128))),
  country: v.optional(v.pipe(v.string(), v.regex(/^[A-Z]{2}$/))),
});
export const PreviewResponse = v.object({ values: v.record(v.string(), Json), version: v.number() });

const httpsUrl = v.pipe(v.string(), v.maxLength(2000), v.regex(/^https:\/\/[^\s"<>]+$/, "must be an https URL"));

export const CreateLinkBody = v.strictObject({
  /** The app's own path the link opens (`/posts/123`). */
  path: v.pipe(v.string(), v.maxLength(1000), v.regex(/^\/[^\s]*$/, "must start with / and hold no spaces")),
  fallbackUrl: v.optional(httpsUrl),
  title: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(200))),
  imageUrl: v.optional(httpsUrl),
});

export const Link = v.object({
  code: v.string(),
  url: v.string(),
  path: v.string(),
  fallbackUrl: v.nullable(v.string()),
  title: v.nullable(v.string()),
  imageUrl: v.nullable(v.string()),
  clicks: v.number(),
  createdAt: v.string(),
});
export const LinkList = v.object({ items: v.array(Link), nextCursor: v.nullable(v.string()) });
export const AdminLinkList = v.object({
  items: v.array(v.object({ ...Link.entries, ownerId: v.string() })),
  nextCursor: v.nullable(v.string()),
});

export const LinksQuery = v.object({
  cursor: cursorParam,
  limit: limitParam(limits.listDefault, limits.listMax),
});

export const CodeParam = v.strictObject({
  code: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{16}$/, "not a link code")),
});

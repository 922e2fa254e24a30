/** Request and response shapes of `/v1/admin/webhooks` (validation + OpenAPI). */
import * as v from "valibot";
import { limits } from "../../config";
import { cursorParam, limitParam } from "../../lib/validation";
import { collections } from "../collections";

/** Every event a webhook may ask for: each declared collection's create/update/delete, users', files', and `*`. */
export const webhookEventNames: readonly string[] = [
  ...collections.flatMap((c) => ["create", "update", "delete"].map((verb) => `${c.name}.${verb}`)),
  "users.create",
  "users.delete",
  "files.create",
  "*",
];
const known = new Set(webhookEventNames);

const EventName = v.pipe(
  v.string(),
  v.check(
    (e) => known.has(e),
    "unknown event; use <collection>.create|update|delete, users.create|delete, files.create or *",
  ),
);

export const CreateWebhookBody = v.strictObject({
  url: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(limits.webhookUrlMax)),
  events: v.pipe(
    v.array(EventName),
    v.minLength(1, "name at least one event"),
    v.maxLength(limits.webhookEventsMax),
    v.transform((events) => [...new Set(events)]),
  ),
});

export const PatchWebhookBody = v.strictObject({ enabled: v.boolean() });

export const WebhookParam = v.strictObject({ id: v.pipe(v.string(), v.minLength(1), v.maxLength(64)) });
export const DeliveryParam = v.strictObject({
  id: v.pipe(v.string(), v.minLength(1), v.maxLength(64)),
  deliveryId: v.pipe(v.string(), v.minLength(1), v.maxLength(64)),
});

export const ListQuery = v.strictObject({
  limit: limitParam(limits.listDefault, limits.listMax),
  cursor: cursorParam,
});

/** A webhook as admins see it (never its secret). */
export const WebhookSchema = v.object({
  id: v.string(),
  url: v.string(),
  events: v.array(v.string()),
  enabled: v.boolean(),
  /** Since when every delivery has failed; null after a success. */
  failingSince: v.nullable(v.string()),
  disabledAt: v.nullable(v.string()),
  createdAt: v.string(),
});
export type Webhook = v.InferOutput<typeof WebhookSchema>;

/** A new webhook, with its signing secret: shown this once. */
export const CreatedWebhook = v.object({ ...WebhookSchema.entries, secret: v.string() });

export const WebhookList = v.object({ items: v.array(WebhookSchema), nextCursor: v.nullable(v.string()) });

/** A new signing secret (shown this once); the previous one keeps signing until `previousUntil`. */
export const RotatedSecret = v.object({ secret: v.string(), previousUntil: v.string() });

/** One delivery of one event to a webhook: its id is the payload's `id`, the same on every attempt. */
const DeliverySchema = v.object({
  id: v.string(),
  event: v.string(),
  status: v.picklist(["pending", "running", "done", "parked"]),
  attempts: v.number(),
  lastError: v.nullable(v.string()),
  /** The HTTP status of the last answer, if one came. */
  lastStatus: v.nullable(v.number()),
  /** Null once the delivery is done or parked (failed for good). */
  nextAttemptAt: v.nullable(v.string()),
  createdAt: v.string(),
});
export type Delivery = v.InferOutput<typeof DeliverySchema>;

export const DeliveryList = v.object({ items: v.array(DeliverySchema), nextCursor: v.nullable(v.string()) });

export const RedeliveryAccepted = v.object({ id: v.string(), status: v.literal("pending") });

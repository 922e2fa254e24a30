/**
 * Webhooks: the admin API at `/v1/admin/webhooks`, one signed delivery attempt (`deliverWebhook`, called
 * by the events run job) and its retry schedule, and what the admin console shows and does.
 */
export { deliverWebhook, SIGNATURE_HEADER, webhookRetryAt } from "./deliver";
export { assertWebhookUrl, webhookRoutes } from "./routes";
export { type Delivery, type Webhook, webhookEventNames } from "./schemas";
export {
  type AuditOf,
  createWebhook,
  deleteWebhook,
  getWebhook,
  listDeliveries,
  listWebhooks,
  redeliver,
  rotateWebhookSecret,
  setWebhookEnabled,
} from "./service";

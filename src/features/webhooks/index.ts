/**
 * Webhooks: the admin API at `/v1/admin/webhooks`, one signed delivery attempt (`deliverWebhook`, called
 * by the events run job) and its retry schedule, and what the admin console shows and does.
 */
export { deliverWebhook, webhookRetryAt } from "./deliver";
export { webhookRoutes } from "./routes";
export { CreateWebhookBody, type Delivery, type Webhook, webhookEventNames } from "./schemas";
export {
  createWebhook,
  deleteWebhook,
  getWebhook,
  listDeliveries,
  listWebhooks,
  redeliver,
  rotateWebhookSecret,
  setWebhookEnabled,
} from "./service";
export { webhookUrlProblem } from "./url";

/** Worker entry: HTTP, Queue consumer, cron, and the Durable Object classes. */

import { handleQueue, type Job } from "./jobs";
import { app } from "./router";
import { handleScheduled } from "./scheduled";

export { ChatRoom } from "./features/chat";
export { CollectionHub } from "./features/collections";
export { ConfigHub } from "./features/release";

export default {
  fetch: app.fetch,
  queue: (batch, env) => handleQueue(batch, env),
  scheduled: (controller, env, ctx) => handleScheduled(controller, env, ctx),
} satisfies ExportedHandler<Env, Job>;

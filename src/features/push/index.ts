/** Push notifications: `/v1/devices`, `POST /v1/admin/push`, and the jobs that deliver (FCM, APNs, Expo). */
import type { JobHandler } from "../../lifecycle";
import type { ChatMessageJob } from "../chat";
import { handleChatMessage, handlePushDeliver, handlePushReceipts, handlePushSend, type PushJob } from "./delivery";

export type { PushJob } from "./delivery";
export { deviceRoutes } from "./routes";

/** The jobs push handles: its own, and chat's `chat.message`. */
export const pushJobHandlers: {
  [T in (PushJob | ChatMessageJob)["type"]]: JobHandler<Extract<PushJob | ChatMessageJob, { type: T }>>;
} = {
  "chat.message": handleChatMessage,
  "push.send": handlePushSend,
  "push.deliver": handlePushDeliver,
  "push.receipts": handlePushReceipts,
};

// The admin feature's needs.
export type { Device } from "./schemas";
export { AdminPushAccepted, AdminPushBody } from "./schemas";
export { deviceCount, listDevices, queuePush } from "./service";

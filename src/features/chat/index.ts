/**
 * Chat rooms: `/v1/rooms` (D1 holds the room index and memberships), one `ChatRoom` Durable Object
 * per room (the message log and the sockets), and what other features ask of rooms.
 */
import type { FeatureParts } from "../../lifecycle";
import { chatDeletionHook } from "./deletion";
import { roomStub } from "./room";
import { closeChatSessionSockets } from "./sessions";

export type { ChatMessageJob } from "./jobs";
export { unmutedMembers } from "./members";
export { ChatRoom } from "./room";
export { chatRoutes } from "./routes";

/** Whether the message `seq` of the room was deleted (push: a deletion cancels a notification still queued). */
export function isMessageDeleted(env: Env, roomId: string, seq: number): Promise<boolean> {
  return roomStub(env, roomId).isDeleted(seq);
}

export const chatParts: FeatureParts = {
  deletionHooks: [chatDeletionHook],
  sessionSocketClosers: [(ctx) => closeChatSessionSockets(ctx)],
};

// The admin console's needs.
export type { Message } from "./protocol";
export { roomStub } from "./room";
export { type AdminRoom, listAllRooms, roomCount, roomWithMembers } from "./rooms";
export type { Member } from "./schemas";

/** Chat's part of account deletion: memberships go with the account, open sockets are cut. */
import type { DeletionHook } from "../account/hooks";
import { deletionPlanFor } from "./service";

/**
 * Memberships are deleted in the account's batch (messages stay, attributed to the deleted id);
 * afterwards each room the user was in closes their sockets with 4403 (and if that call is lost,
 * the room's heartbeat alarm re-checks membership and closes them anyway).
 */
export const chatDeletionHook: DeletionHook = async ({ env, db, userId }) => {
  const { roomIds, statements } = await deletionPlanFor(db, userId);
  return {
    statements,
    after: async () => {
      await Promise.all(roomIds.map((id) => env.CHAT_ROOM.get(env.CHAT_ROOM.idFromName(id)).disconnectUser(id, userId, "account deleted")));
    },
  };
};

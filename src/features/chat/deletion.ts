/** Chat's part of account deletion: memberships go with the account, open sockets are cut. */

import type { DeletionHook } from "../../lifecycle";
import { deletionPlanFor } from "./members";
import { closeChatSessionSockets } from "./sessions";

/**
 * Memberships are deleted in the account's batch (messages stay, attributed to the deleted id);
 * afterwards each room the user was in closes their sockets with 4401, as for any ended session
 * (the rooms were read before the memberships went). If that call is lost, the room's heartbeat
 * alarm finds the sessions and the membership gone and closes them anyway.
 */
export const chatDeletionHook: DeletionHook = async ({ env, db, userId }) => {
  const { roomIds, statements } = await deletionPlanFor(db, userId);
  return {
    statements,
    after: () => closeChatSessionSockets({ env, db, userId, sessions: "all" }, roomIds),
  };
};

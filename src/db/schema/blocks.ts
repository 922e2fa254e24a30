/**
 * Abuse resistance: who blocked whom, who left which room of their own accord, and whom each user
 * pulled into rooms today. Read by chat (room creation and member adds) and push (no notification
 * of a blocked user's messages); see src/features/blocks.
 */
import { index, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { users } from "./auth";
import { rooms } from "./chat";

/** `blocker` blocked `blocked`. One-way; both sides go with either account (FK cascade and the deletion hook). */
export const blocks = sqliteTable(
  "blocks",
  {
    blockerId: text("blocker_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    blockedId: text("blocked_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    createdAt: text("created_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.blockerId, t.blockedId] }),
    /** "Who blocked this user": room checks, push recipients, account deletion. */
    index("blocks_blocked_idx").on(t.blockedId),
    /** The blocker's list, newest first. */
    index("blocks_blocker_created_idx").on(t.blockerId, t.createdAt, t.blockedId),
  ],
);

/**
 * A member who left a group themselves. Nobody else can add them back; they can rejoin on their
 * own. Gone when they rejoin, or with the room or the account.
 */
export const roomLeaves = sqliteTable(
  "room_leaves",
  {
    roomId: text("room_id")
      .notNull()
      .references(() => rooms.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    leftAt: text("left_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.roomId, t.userId] }), index("room_leaves_user_idx").on(t.userId)],
);

/**
 * The distinct people each user put into rooms on each UTC day (`YYYY-MM-DD`), for the daily cap.
 * A user's earlier days are deleted whenever they add someone, so a user holds at most one day's
 * rows. `added_id` has no foreign key: it is the adder's counter, not the added user's data.
 */
export const roomAdds = sqliteTable(
  "room_adds",
  {
    adderId: text("adder_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    day: text("day").notNull(),
    addedId: text("added_id").notNull(),
  },
  (t) => [primaryKey({ columns: [t.adderId, t.day, t.addedId] })],
);

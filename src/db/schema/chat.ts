/**
 * Chat rooms in D1: the room index and membership, for listing and access checks. The message log
 * itself lives in each room's Durable Object; `lastSeq`/`lastMessage`/`lastActivityAt` are a
 * mirror the object writes after storing a message (see src/features/chat/room.ts).
 */
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { users } from "./auth";

export const rooms = sqliteTable(
  "rooms",
  {
    id: text("id").primaryKey(),
    kind: text("kind", { enum: ["direct", "group"] }).notNull(),
    name: text("name"),
    /** Kept when the creator's account is deleted (no foreign key). */
    createdBy: text("created_by").notNull(),
    createdAt: text("created_at").notNull(),
    /** Direct rooms only: the two user ids, sorted and joined, so a pair has one room. */
    directKey: text("direct_key"),
    lastSeq: integer("last_seq").notNull().default(0),
    /** The newest message as JSON (the contract's Message), null before the first. */
    lastMessage: text("last_message"),
    lastActivityAt: text("last_activity_at").notNull(),
  },
  (t) => [
    uniqueIndex("rooms_direct_key_unique").on(t.directKey),
    index("rooms_activity_idx").on(t.lastActivityAt, t.id),
  ],
);

export const roomMembers = sqliteTable(
  "room_members",
  {
    roomId: text("room_id")
      .notNull()
      .references(() => rooms.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    role: text("role", { enum: ["owner", "member"] }).notNull(),
    lastReadSeq: integer("last_read_seq").notNull().default(0),
    /** Read by the push feature: muted members get no notifications for this room. */
    muted: integer("muted", { mode: "boolean" }).notNull().default(false),
    joinedAt: text("joined_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.roomId, t.userId] }), index("room_members_user_idx").on(t.userId)],
);

/** Push notification devices: one row per provider token, owned by the user who registered it last. */
import { index, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { users } from "./auth";

export const devices = sqliteTable(
  "devices",
  {
    id: text("id").primaryKey(),
    /** The account that registered this token last; the row goes with the account (FK cascade). */
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    /** The provider's device token. Unique: a token registered again moves to the new caller. */
    token: text("token").notNull(),
    platform: text("platform", { enum: ["ios", "android", "web"] }).notNull(),
    provider: text("provider", { enum: ["fcm", "apns", "expo"] }).notNull(),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [uniqueIndex("devices_token_unique").on(t.token), index("devices_user_idx").on(t.userId, t.updatedAt)],
);

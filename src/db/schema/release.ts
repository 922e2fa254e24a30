/**
 * Release controls: remote config (admin-set values and rules over the code defaults of src/app/config.ts, and
 * the version every change bumps) and short links. See src/features/release and docs/release.md.
 */
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { users } from "./auth";

/** A config key an admin set: its value and ordered rules, as JSON. A key with no row has its code default. */
export const configValues = sqliteTable("config_values", {
  key: text("key").primaryKey(),
  /** JSON of the value. */
  value: text("value").notNull(),
  /** JSON of the rules: `[{ when, value }]`, first match wins. */
  rules: text("rules").notNull(),
  updatedAt: text("updated_at").notNull(),
});

/** One row (`id` 1): the config's version, bumped in the batch of every change (isolates compare it). */
export const configState = sqliteTable("config_state", {
  id: integer("id").primaryKey(),
  version: integer("version").notNull(),
});

/** A short link: `/l/<code>` opens `path` in the app, or falls back. Goes with its owner's account. */
export const shortLinks = sqliteTable(
  "short_links",
  {
    code: text("code").primaryKey(),
    ownerId: text("owner_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    path: text("path").notNull(),
    fallbackUrl: text("fallback_url"),
    title: text("title"),
    imageUrl: text("image_url"),
    /** Opens of `/l/<code>`, added in coalesced flushes (see docs/release.md). */
    clicks: integer("clicks").notNull().default(0),
    createdAt: text("created_at").notNull(),
  },
  (t) => [
    /** A user's links, newest first. */
    index("short_links_owner_idx").on(t.ownerId, t.createdAt, t.code),
    /** Every link, newest first (the admin's list). */
    index("short_links_created_idx").on(t.createdAt, t.code),
  ],
);

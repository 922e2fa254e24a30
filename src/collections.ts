/**
 * The app's own data: one `collection()` per table, with its fields and one rule per action
 * (`public`, `authenticated`, `owner`, `none` = service key only). Export each one; then run
 * `npm run db:generate` for its migration. See docs/collections.md.
 */
import { collection, field } from "./features/collections/define";

export const notes = collection("notes", {
  fields: {
    title: field.string({ min: 1, max: 200 }),
    body: field.string({ max: 10_000, default: "" }),
    pinned: field.boolean({ default: false }),
    tags: field.stringArray({ maxItems: 20, itemMax: 100, default: [] }),
  },
  rules: { create: "authenticated", read: "owner", list: "owner", update: "owner", delete: "owner" },
});

export const posts = collection("posts", {
  fields: {
    text: field.string({ min: 1, max: 2000 }),
    imageFileId: field.string({ min: 1, max: 64, nullable: true }),
  },
  rules: { create: "authenticated", read: "public", list: "public", update: "owner", delete: "owner" },
});

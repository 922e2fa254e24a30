/**
 * The app's own data: one `collection()` per table, with its fields and one rule per action
 * (`public`, `authenticated`, `owner`, `none` = service key only; in a `scope: "team"` collection
 * `team:viewer` … `team:owner`, and lists such as `["owner", "team:admin"]`). Export each one; then
 * run `npm run db:generate` for its migration. See docs/collections.md and docs/teams.md.
 *
 * Lists sort only on createdAt, updatedAt and fields declared `sortable: true` (each is indexed),
 * and use `$contains` only on fields declared `searchable: true`.
 */
import { collection, field } from "../features/collections/define";

export const notes = collection("notes", {
  fields: {
    title: field.string({ min: 1, max: 200, sortable: true, searchable: true }),
    body: field.string({ max: 10_000, default: "" }),
    pinned: field.boolean({ default: false }),
    tags: field.stringArray({ maxItems: 20, itemMax: 100, default: [], searchable: true }),
    // A private note about a team's shopping list; leaving the team keeps the note (`expand` then shows null).
    listId: field.ref("lists", { onDelete: "setNull" }),
  },
  rules: { create: "authenticated", read: "owner", list: "owner", update: "owner", delete: "owner" },
  // "My pinned notes, last edited first" walks only the pinned ones.
  indexes: [["ownerId", "pinned", "updatedAt"]],
});

export const posts = collection("posts", {
  fields: {
    // Searching posts by text needs where.ownerId (one author's posts): a list across all owners
    // filters only on what its index holds (docs/collections.md, "Lists").
    text: field.string({ min: 1, max: 2000, searchable: true }),
    imageFileId: field.string({ min: 1, max: 64, nullable: true }),
    // The private note a post was written from: only its author can expand it; others see null.
    fromNoteId: field.ref("notes", { onDelete: "setNull" }),
    // Kept by the server as comments come and go; a body that sets it is refused.
    commentCount: field.count("comments", "postId"),
  },
  rules: { create: "authenticated", read: "public", list: "public", update: "owner", delete: "owner" },
});

// Comments on posts: anyone reads a post's comments (`where: { postId }`, whoever wrote them);
// deleting a post deletes its comments (their tombstones reach /changes and live subscribers). A
// reply names the comment it answers; deleting that comment keeps the reply and clears the link.
export const comments = collection("comments", {
  fields: {
    postId: field.ref("posts", { onDelete: "cascade" }),
    replyTo: field.ref("comments", { onDelete: "setNull" }),
    text: field.string({ min: 1, max: 2000 }),
  },
  rules: { create: "authenticated", read: "public", list: "public", update: "owner", delete: "owner" },
});

// A shared shopping list: each list and item belongs to a team (`teamId`, required on create). Any
// member reads; members and up (not viewers) add and edit; an item's author or an admin deletes.
const shoppingRules = {
  read: "team:viewer",
  list: "team:viewer",
  create: "team:member",
  update: "team:member",
  delete: ["owner", "team:admin"],
} as const;

export const lists = collection("lists", {
  scope: "team",
  fields: { title: field.string({ min: 1, max: 200, sortable: true }) },
  rules: shoppingRules,
});

export const items = collection("items", {
  scope: "team",
  fields: {
    // A list the caller can read (checked on every write). A list that still has items cannot be
    // deleted (409): the app deletes or moves them first. Deleting the team deletes both.
    listId: field.ref("lists", { onDelete: "restrict" }),
    text: field.string({ min: 1, max: 500 }),
    done: field.boolean({ default: false }),
  },
  // "The items of this list": the reference's own index, (listId, createdAt, id).
  rules: shoppingRules,
  // "Done items last changed before…", across all teams (the nightly clean-up in src/app/schedules.ts).
  indexes: [["done", "updatedAt"]],
});

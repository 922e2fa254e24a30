import { describe, expect, it } from "vitest";
import { signedIn } from "./helpers.js";

describe("references", () => {
  it("list and expanded carry the referenced records; an unreadable one is null", async () => {
    const c = await signedIn();
    const post = await c.collection("posts").create({ text: "hello" });
    const comments = c.collection("comments");
    const first = await comments.create({ postId: post.id, text: "first" });
    await comments.create({ postId: post.id, text: "reply", replyTo: first.id });
    const page = await comments.list({ where: { postId: post.id }, sort: "createdAt", expand: ["postId", "replyTo"] });
    const text = (r: object | null) => (r as { text?: string } | null)?.text ?? null;
    expect(page.items.map((x) => [text(x.expand.postId), text(x.expand.replyTo)])).toEqual([
      ["hello", null],
      ["hello", "first"],
    ]);
    const one = await comments.expanded(first.id, ["postId"]);
    expect(one.expand.postId).toMatchObject({ id: post.id });
    // A post drafted from a private note: someone else expands it to null.
    const note = await c.collection("notes").create({ title: "draft" });
    const published = await c.collection("posts").create({ text: "from a draft", fromNoteId: note.id });
    const other = await signedIn();
    const seen = await other.collection("posts").expanded(published.id, ["fromNoteId"]);
    expect(seen.expand.fromNoteId).toBeNull();
    const mine = await c.collection("posts").expanded(published.id, ["fromNoteId"]);
    expect(mine.expand.fromNoteId).toMatchObject({ title: "draft" });
    c.close();
    other.close();
  });
});

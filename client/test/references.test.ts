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
    expect(page.items.map((x) => [x.expand.postId?.text, x.expand.replyTo?.text ?? null])).toEqual([
      ["hello", null],
      ["hello", "first"],
    ]);
    const one = await comments.expanded(first.id, ["postId"]);
    expect(one.expand.postId?.id).toBe(post.id);
    // A post drafted from a private note: someone else expands it to null.
    const note = await c.collection("notes").create({ title: "draft" });
    const published = await c.collection("posts").create({ text: "from a draft", fromNoteId: note.id });
    const other = await signedIn();
    const seen = await other.collection("posts").expanded(published.id, ["fromNoteId"]);
    expect(seen.expand.fromNoteId).toBeNull();
    expect((await c.collection("posts").expanded(published.id, ["fromNoteId"])).expand.fromNoteId?.title).toBe("draft");
    c.close();
    other.close();
  });
});

/**
 * Issue 23.3: the console writes through the same path as the API, so what an admin edits or
 * deletes reaches live subscribers (collection hubs) and room sockets like any other write.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { signup, type TestUser } from "../../helpers/api";
import { connect, createGroup, sendRest } from "../chat/helpers";
import { createNote, createPost } from "../collections/helpers";
import { subscribe } from "../collections/live-helpers";
import { signIn, visit } from "./console-helpers";
import { signupAdmin } from "./helpers";

let admin: TestUser;
beforeAll(async () => {
  admin = await signupAdmin();
});

describe("console writes reach live subscribers", () => {
  it("an owner's subscription gets the console's edit and then its deletion (owner-scoped hub)", async () => {
    const user = await signup();
    const note = await createNote(user, { title: "before" });
    const { socket } = await subscribe(user, "notes");
    const { b, csrf } = await signIn(admin);

    const edit = await visit(b, `/admin/collections/notes/${note.id}`, {
      _csrf: csrf,
      _version: String(note.version),
      title: "edited by an admin",
      body: "",
      pinned: "false",
      tags: "",
    });
    expect(edit.status, edit.html).toBe(303);
    const changed = await socket.next("change");
    expect(changed.item).toMatchObject({ id: note.id, title: "edited by an admin", version: 2 });

    const del = await visit(b, `/admin/collections/notes/${note.id}/delete`, { _csrf: csrf, confirm: "yes" });
    expect(del.status).toBe(303);
    const gone = await socket.next("change");
    expect(gone.item).toEqual({ id: note.id, deleted: true, version: 3 });
    socket.close();
  });

  it("a shared collection's subscribers (another user) get the console's deletion", async () => {
    const [author, reader] = [await signup(), await signup()];
    const post = await createPost(author, "moderate me");
    const { socket } = await subscribe(reader, "posts");
    const { b, csrf } = await signIn(admin);
    expect((await visit(b, `/admin/collections/posts/${post.id}/delete`, { _csrf: csrf, confirm: "yes" })).status).toBe(
      303,
    );
    const gone = await socket.next("change");
    expect(gone.item).toMatchObject({ id: post.id, deleted: true });
    socket.close();
  });

  it("a chat message deleted in the console reaches the room's sockets", async () => {
    const [owner, member] = [await signup(), await signup()];
    const room = await createGroup(owner, [member]);
    const a = await connect(member, room.id);
    const sent = (await sendRest(owner, room.id, "remove me")).body as { seq: number };
    await a.socket.messages(1);
    const { b, csrf } = await signIn(admin);
    const res = await visit(b, `/admin/rooms/${room.id}/messages/${sent.seq}/delete`, { _csrf: csrf, confirm: "yes" });
    expect(res.status).toBe(303);
    expect(await a.socket.next("deleted")).toEqual({ type: "deleted", seq: sent.seq });
  });
});

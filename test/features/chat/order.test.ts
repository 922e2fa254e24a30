import { describe, expect, it } from "vitest";
import { signup } from "../../helpers/api";
import { connect, createGroup, insertFile } from "./helpers";

describe("chat: one socket's sends keep their order", () => {
  it("a photo sent before a text gets the lower seq", async () => {
    const alice = await signup();
    const room = await createGroup(alice);
    const file = await insertFile(alice.id, "private");
    const { socket } = await connect(alice, room.id);
    for (let i = 0; i < 3; i++) {
      socket.send({ type: "send", clientId: `p-${i}`, fileId: file });
      socket.send({ type: "send", clientId: `t-${i}`, text: `caption ${i}` });
    }
    const got = await socket.messages(6);
    expect(got.map((m) => m.clientId)).toEqual(["p-0", "t-0", "p-1", "t-1", "p-2", "t-2"]);
    socket.close();
  });
});

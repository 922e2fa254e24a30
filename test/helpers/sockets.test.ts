/**
 * The socket helpers close what a test left open when it ends, passed or failed
 * (test/helpers/sockets.ts), so one test's sockets never leak into the next.
 */
import { describe, expect, it } from "vitest";
import { connect, createGroup, type Socket } from "../features/chat/helpers";
import { signup, type TestUser } from "./api";

const CLOSED = 3;

describe("sockets a test leaves open are closed when it ends", () => {
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let roomId: string;
  const left: Socket[] = [];
  let failedOnPurpose = false;

  it("a test that passes with its socket open", async () => {
    [alice, bob, carol] = [await signup(), await signup(), await signup()];
    roomId = (await createGroup(alice, [bob, carol])).id;
    const { socket } = await connect(alice, roomId);
    left.push(socket);
    expect(socket.ws.readyState).not.toBe(CLOSED);
  });

  it.fails("a test that fails with its socket open (this failure is the point)", async () => {
    const { socket } = await connect(bob, roomId);
    left.push(socket);
    failedOnPurpose = true;
    throw new Error("failing on purpose with a socket open");
  });

  it("both sockets were closed, and the room counts neither user online", async () => {
    expect(failedOnPurpose).toBe(true);
    expect(left).toHaveLength(2);
    expect(left.map((s) => s.ws.readyState)).toEqual([CLOSED, CLOSED]);
    const { socket, ready } = await connect(carol, roomId);
    expect(ready.online).toEqual([carol.id]);
    socket.close();
  });
});

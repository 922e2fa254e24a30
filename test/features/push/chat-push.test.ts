import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { limits } from "../../../src/config";
import { chatNotification, handleChatMessage } from "../../../src/features/push/delivery";
import worker from "../../../src/index";
import type { Job } from "../../../src/jobs";
import { api, signup } from "../../helpers/api";
import { connect, createGroup, sendRest } from "../chat/helpers";
import {
  apnsToken,
  expoToken,
  fcmToken,
  recordingEnv,
  recordRoomJobs,
  registerDevice,
  requestsFor,
  runJobs,
} from "./helpers";

type ChatJob = Extract<Job, { type: "chat.message" }>;

const mute = (user: { accessToken: string }, roomId: string, muted: boolean) =>
  api(`/v1/rooms/${roomId}/members/me`, { method: "PATCH", token: user.accessToken, body: { muted } });
const sorted = (ids: string[]) => [...ids].sort();

describe("chat messages → push", () => {
  it("a message pushes once to the offline member, and not to the online, the muted or the sender", async () => {
    const alice = await signup({ name: "Alice" });
    const bob = await signup({ name: "Bob" });
    const carol = await signup({ name: "Carol" });
    const dave = await signup({ name: "Dave" });
    const tokens = { alice: fcmToken(), bob: fcmToken(), carol: apnsToken(), dave: expoToken() };
    await registerDevice(alice, tokens.alice, "fcm");
    await registerDevice(bob, tokens.bob, "fcm");
    await registerDevice(carol, tokens.carol, "apns");
    await registerDevice(dave, tokens.dave, "expo");
    const room = await createGroup(alice, [bob, carol, dave], "Team");
    expect((await mute(dave, room.id, true)).status).toBe(200);
    // The room's push jobs are recorded, then run through the Worker's queue handler: once that
    // returns, every push of the job has been sent (no waiting for the background consumer).
    const roomJobs = await recordRoomJobs(room.id);
    const { env: consumerEnv, queued: retries } = recordingEnv();
    const { socket } = await connect(carol, room.id);

    const sent = await sendRest(alice, room.id, "  Hello\n  team!  ");
    expect(sent.status).toBe(201);
    const first = await roomJobs.chatJob(sent.body.seq);
    // The room leaves out the sender and whoever is connected (Carol); the consumer drops the muted.
    expect(sorted(first.recipients)).toEqual(sorted([bob.id, dave.id]));
    await runJobs(consumerEnv, [{ body: first }]);

    const pushes = await requestsFor("/fcm/v1/", tokens.bob);
    expect(pushes).toHaveLength(1);
    expect(JSON.parse(pushes[0]!.body).message).toEqual({
      token: tokens.bob,
      notification: { title: "Alice in Team", body: "Hello team!" },
      data: { roomId: room.id, seq: String(sent.body.seq) },
      android: { priority: "HIGH" },
      apns: { headers: { "apns-priority": "10" }, payload: { aps: { sound: "default", "thread-id": room.id } } },
    });
    expect(await requestsFor("/fcm/v1/", tokens.alice)).toEqual([]);
    expect(await requestsFor("/apns/", tokens.carol)).toEqual([]);
    expect(await requestsFor("/expo/", tokens.dave)).toEqual([]);

    // Unmuted, Dave is pushed again; Carol, still connected, is not.
    expect((await mute(dave, room.id, false)).status).toBe(200);
    const second = await sendRest(alice, room.id, "Second");
    const secondJob = await roomJobs.chatJob(second.body.seq);
    expect(sorted(secondJob.recipients)).toEqual(sorted([bob.id, dave.id]));
    await runJobs(consumerEnv, [{ body: secondJob }]);
    expect(await requestsFor("/expo/", tokens.dave)).toHaveLength(1);
    expect(await requestsFor("/fcm/v1/", tokens.bob)).toHaveLength(2);
    expect(await requestsFor("/apns/", tokens.carol)).toEqual([]);

    // Once Carol's socket is gone she is offline, and her device gets the next one.
    socket.close();
    await socket.closed;
    const third = await sendRest(alice, room.id, "Third");
    const thirdJob = await roomJobs.chatJob(third.body.seq);
    expect(sorted(thirdJob.recipients)).toEqual(sorted([bob.id, carol.id, dave.id]));
    await runJobs(consumerEnv, [{ body: thirdJob }]);
    const carolPushes = await requestsFor("/apns/", tokens.carol);
    expect(carolPushes).toHaveLength(1);
    expect(JSON.parse(carolPushes[0]!.body).aps.alert).toEqual({ title: "Alice in Team", body: "Third" });
    // One job per message; nothing was retried, and only Expo's two pushes (Dave's) queued their receipt check.
    expect(roomJobs.queued.map((q) => q.body.type === "chat.message" && q.body.seq)).toEqual([1, 2, 3]);
    expect(retries.map((q) => q.body.type)).toEqual(["push.receipts", "push.receipts"]);
  });

  it("the handler drops the sender, non-members and muted members from a real job", async () => {
    const alice = await signup({ name: "Alice" });
    const bob = await signup();
    const dave = await signup();
    const outsider = await signup();
    const tb = fcmToken();
    const td = fcmToken();
    const to = fcmToken();
    await registerDevice(bob, tb, "fcm");
    await registerDevice(dave, td, "fcm");
    await registerDevice(outsider, to, "fcm");
    const room = await createGroup(alice, [bob, dave], "Ops");
    await mute(dave, room.id, true);
    const { env: e, queued } = recordingEnv();
    const job: ChatJob = {
      type: "chat.message",
      roomId: room.id,
      roomName: "Ops",
      roomKind: "group",
      seq: 9,
      messageId: crypto.randomUUID(),
      senderId: alice.id,
      senderName: "Alice",
      text: "Deploy done",
      hasFile: false,
      recipients: [alice.id, bob.id, dave.id, outsider.id],
    };
    expect(await handleChatMessage(e, job)).toMatchObject({ sent: 1, dead: 0, retried: 0 });
    expect(queued).toEqual([]);
    expect(await requestsFor("/fcm/v1/", tb)).toHaveLength(1);
    expect(await requestsFor("/fcm/v1/", td)).toEqual([]);
    expect(await requestsFor("/fcm/v1/", to)).toEqual([]);
  });

  it("a member who blocked the sender gets no push of the sender's messages; everyone else still does", async () => {
    const alice = await signup({ name: "Alice" });
    const bob = await signup();
    const carol = await signup();
    const [tb, tc] = [fcmToken(), fcmToken()];
    await registerDevice(bob, tb, "fcm");
    await registerDevice(carol, tc, "fcm");
    const room = await createGroup(alice, [bob, carol], "Blocks");
    // Bob blocked Alice; Alice blocked Carol (one-way: Carol did not block Alice).
    expect((await api("/v1/blocks", { token: bob.accessToken, body: { userId: alice.id } })).status).toBe(201);
    expect((await api("/v1/blocks", { token: alice.accessToken, body: { userId: carol.id } })).status).toBe(201);
    const { env: e } = recordingEnv();
    const job: ChatJob = {
      type: "chat.message",
      roomId: room.id,
      roomName: "Blocks",
      roomKind: "group",
      seq: 1,
      messageId: crypto.randomUUID(),
      senderId: alice.id,
      senderName: "Alice",
      text: "buy my stuff",
      hasFile: false,
      recipients: [bob.id, carol.id],
    };
    expect(await handleChatMessage(e, job)).toMatchObject({ sent: 1 });
    expect(await requestsFor("/fcm/v1/", tb)).toEqual([]);
    expect(await requestsFor("/fcm/v1/", tc)).toHaveLength(1);
    // Bob still gets the pushes of others in the room.
    expect(
      await handleChatMessage(e, {
        ...job,
        seq: 2,
        messageId: crypto.randomUUID(),
        senderId: carol.id,
        senderName: "Carol",
        recipients: [bob.id],
      }),
    ).toMatchObject({ sent: 1 });
    expect(await requestsFor("/fcm/v1/", tb)).toHaveLength(1);
    // Once he unblocks Alice, her messages push again.
    expect((await api(`/v1/blocks/${alice.id}`, { method: "DELETE", token: bob.accessToken })).status).toBe(204);
    expect(
      await handleChatMessage(e, { ...job, seq: 3, messageId: crypto.randomUUID(), recipients: [bob.id] }),
    ).toMatchObject({ sent: 1 });
    expect(await requestsFor("/fcm/v1/", tb)).toHaveLength(2);
  });

  // The message is stored and delivered; only the push skips the blocker.
  it("end to end: a blocked user's message reaches the blocker's room but pushes only others", async () => {
    const alice = await signup({ name: "Alice" });
    const bob = await signup();
    const carol = await signup();
    const [tb, tc] = [fcmToken(), fcmToken()];
    await registerDevice(bob, tb, "fcm");
    await registerDevice(carol, tc, "fcm");
    const room = await createGroup(alice, [bob, carol], "E2E");
    expect((await api("/v1/blocks", { token: bob.accessToken, body: { userId: alice.id } })).status).toBe(201);
    const roomJobs = await recordRoomJobs(room.id);
    const sent = await sendRest(alice, room.id, "hello all");
    expect(sent.status).toBe(201);
    // The room enqueues the push for both members; the consumer leaves out the blocker.
    const job = await roomJobs.chatJob(sent.body.seq);
    expect(sorted(job.recipients)).toEqual(sorted([bob.id, carol.id]));
    await runJobs(recordingEnv().env, [{ body: job }]);
    expect(await requestsFor("/fcm/v1/", tc)).toHaveLength(1);
    expect(await requestsFor("/fcm/v1/", tb)).toEqual([]);
    const history = await api(`/v1/rooms/${room.id}/messages`, { token: bob.accessToken });
    expect(history.body.items.map((m: { text: string }) => m.text)).toEqual(["hello all"]);
  });

  it("runs through the Queue consumer: the job is acked and the push sent", async () => {
    const alice = await signup({ name: "Alice" });
    const bob = await signup();
    const tb = apnsToken();
    await registerDevice(bob, tb, "apns");
    const room = await createGroup(alice, [bob], "Q");
    const job: ChatJob = {
      type: "chat.message",
      roomId: room.id,
      roomName: "Q",
      roomKind: "group",
      seq: 1,
      messageId: crypto.randomUUID(),
      senderId: alice.id,
      senderName: "Alice",
      text: "hi",
      hasFile: false,
      recipients: [bob.id],
    };
    const batch = createMessageBatch<Job>("outpost-jobs", [
      { id: "m1", timestamp: new Date(), attempts: 1, body: job },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual(["m1"]);
    expect(result.retryMessages).toEqual([]);
    const [req] = await requestsFor("/apns/", tb);
    expect(JSON.parse(req!.body)).toEqual({
      aps: { alert: { title: "Alice in Q", body: "hi" }, sound: "default", "thread-id": room.id },
      roomId: room.id,
      seq: "1",
    });
  });

  it("titles name the sender (and the group); bodies are the trimmed text, cut, or say an attachment came", () => {
    const base: ChatJob = {
      type: "chat.message",
      roomId: "r",
      roomName: null,
      roomKind: "direct",
      seq: 3,
      messageId: "m",
      senderId: "s",
      senderName: "Ada",
      text: "hi",
      hasFile: false,
      recipients: [],
    };
    expect(chatNotification(base)).toEqual({
      title: "Ada",
      body: "hi",
      data: { roomId: "r", seq: "3" },
      threadId: "r",
    });
    expect(chatNotification({ ...base, roomKind: "group", roomName: "Team" }).title).toBe("Ada in Team");
    expect(chatNotification({ ...base, roomKind: "group", roomName: "Team", senderName: null }).title).toBe("Team");
    expect(chatNotification({ ...base, senderName: null }).title).toBe("New message");
    expect(chatNotification({ ...base, text: null, hasFile: true }).body).toBe("Sent an attachment");
    const long = chatNotification({ ...base, text: "é".repeat(limits.pushChatBodyMax + 50) }).body;
    expect([...long]).toHaveLength(limits.pushChatBodyMax);
    expect(long.endsWith("…")).toBe(true);
  });
});

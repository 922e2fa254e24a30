/**
 * `/v1/rooms/*`: rooms and membership (D1), messages and read positions (the room's Durable
 * Object, over RPC), and the room WebSocket. Every room route answers 404 to non-members; routes that
 * act on a room decide on the primary's data (`readPrimary`), so a removal or block holds at once.
 */
import { Hono } from "hono";
import * as v from "valibot";
import { limits } from "../../config";
import type { AppEnv } from "../../env";
import { AppError } from "../../errors";
import { decodeCursor, encodeCursor } from "../../lib/cursor";
import { describe, validate } from "../../lib/validation";
import { readPrimary } from "../../middleware/fresh-reads";
import { idempotency } from "../../middleware/idempotency";
import { checkRate } from "../../middleware/rate-limit";
import { requireSocketUser, requireUser, userOf } from "../auth";
import { addMember, rejoinRoom, removeMember, setMuted } from "./members";
import { MessageSchema, SendBody } from "./protocol";
import { unwrap } from "./refusals";
import { type HistoryQuery, INTERNAL_HEADERS, roomStub } from "./room";
import { createRoom, getRoom, listRooms, requireMembership } from "./rooms";
import * as schemas from "./schemas";

const TAG = "Chat";

/** History cursors carry the bounds of the next page: `a` = after (forward), `b` = before (backward). */
const Seq = v.pipe(v.number(), v.safeInteger(), v.minValue(0));
const HistoryCursor = v.pipe(
  v.strictObject({ a: v.optional(Seq), b: v.optional(Seq) }),
  v.check((c) => c.a !== undefined || c.b !== undefined),
);

export const chatRoutes = new Hono<AppEnv>()
  .post(
    "/",
    describe({
      tag: TAG,
      summary: "Create a room",
      rateLimited: true,
      description:
        "`kind` defaults to `group` (the caller becomes its owner). A `direct` room names exactly one other user " +
        "and is unique per pair: asking again returns the existing room with 200 (a caller who left it is a " +
        "member again; the other side is never put back by this). Members who blocked the caller are refused " +
        "with 403 (each named in `errors`); a direct room is refused when either side blocked the other. Room " +
        "creations and member adds share a per-user rate limit, and the distinct people a user puts into rooms " +
        "per UTC day are capped (429 with Retry-After).",
      responses: {
        201: { description: "Created", schema: schemas.RoomSchema },
        200: { description: "The existing direct room", schema: schemas.RoomSchema },
        403: { description: "A named user blocked the caller (or, for a direct room, the caller blocked them)" },
      },
    }),
    readPrimary,
    requireUser,
    idempotency,
    validate("json", schemas.CreateRoomBody),
    async (c) => {
      await checkRate(c.env, "ROOMS_LIMITER", `rooms:${userOf(c).userId}`, limits.chatRoomWritesPeriodSec);
      const { room, created } = await createRoom(c.get("db"), userOf(c).userId, c.req.valid("json"));
      return c.json(room, created ? 201 : 200);
    },
  )
  .get(
    "/",
    describe({
      tag: TAG,
      summary: "The caller's rooms, most recent activity first",
      responses: { 200: { description: "Rooms with lastMessage and unreadCount", schema: schemas.RoomList } },
    }),
    requireUser,
    validate("query", schemas.ListQuery),
    async (c) => {
      const q = c.req.valid("query");
      return c.json(await listRooms(c.get("db"), userOf(c).userId, q.limit, q.cursor));
    },
  )
  .get(
    "/:id",
    describe({
      tag: TAG,
      summary: "A room (members only)",
      responses: {
        200: { description: "Room", schema: schemas.RoomSchema },
        404: { description: "No such room, or not a member" },
      },
    }),
    requireUser,
    validate("param", schemas.RoomParam),
    async (c) => {
      const room = await getRoom(c.get("db"), c.req.valid("param").id, userOf(c).userId);
      if (!room) throw new AppError("not_found", "No such room.");
      return c.json(room);
    },
  )
  .post(
    "/:id/members",
    describe({
      tag: TAG,
      summary: "Add a member (owner only), or rejoin a group one left",
      rateLimited: true,
      description:
        "The owner adds `userId`. Someone who blocked the owner, or who left this room themselves, cannot be " +
        "added (403). A member who left a group rejoins it by sending their own id (or `me`), unless a member " +
        "blocked them (403). Membership, roles and blocks are read from the primary database. Shares the " +
        "per-user rate limit and daily cap of room creation (429 with Retry-After).",
      responses: {
        201: { description: "The room with its new member", schema: schemas.RoomSchema },
        403: {
          description: "Not the owner, the user blocked the owner or left this room, or a member blocked a rejoiner",
        },
        404: { description: "No such room (or not a member), or no such user" },
        409: { description: "Already a member, or a direct room" },
      },
    }),
    readPrimary,
    requireUser,
    idempotency,
    validate("param", schemas.RoomParam),
    validate("json", schemas.AddMemberBody),
    async (c) => {
      const { id } = c.req.valid("param");
      const me = userOf(c).userId;
      const { userId } = c.req.valid("json");
      await checkRate(c.env, "ROOMS_LIMITER", `rooms:${me}`, limits.chatRoomWritesPeriodSec);
      const room =
        userId === me || userId === "me"
          ? await rejoinRoom(c.get("db"), id, me)
          : await addMember(c.get("db"), await requireMembership(c.get("db"), id, me), userId);
      return c.json(room, 201);
    },
  )
  .patch(
    "/:id/members/me",
    describe({
      tag: TAG,
      summary: "Mute or unmute the room for the caller (no push while muted)",
      responses: { 200: { description: "The caller's membership", schema: schemas.MutedMember } },
    }),
    requireUser,
    validate("param", schemas.RoomParam),
    validate("json", schemas.MuteBody),
    async (c) =>
      c.json(await setMuted(c.get("db"), c.req.valid("param").id, userOf(c).userId, c.req.valid("json").muted)),
  )
  .delete(
    "/:id/members/:userId",
    describe({
      tag: TAG,
      summary: "Remove a member (owner), or leave (the member)",
      description:
        "`me` stands for the caller. Any member can leave any room, direct rooms included; nobody else can put a " +
        "leaver back (they rejoin a group by adding themselves, a direct room by opening it again). The removed " +
        "member's open sockets are closed with code 4403.",
      responses: {
        204: { description: "Removed" },
        403: { description: "Not the owner, or the other member of a direct room" },
        404: { description: "No such room (or not a member), or the user is not a member" },
      },
    }),
    readPrimary,
    requireUser,
    validate("param", schemas.MemberParam),
    async (c) => {
      const { id, userId } = c.req.valid("param");
      const me = userOf(c).userId;
      const m = await requireMembership(c.get("db"), id, me);
      const target = userId === "me" ? me : userId;
      await removeMember(c.get("db"), m, target);
      // D1 first: once it committed no new socket of theirs passes the Worker's check; then cut the
      // open ones. The removal stands even if this call fails: the room's alarm re-checks membership.
      try {
        await roomStub(c.env, id).disconnectUser(id, target, "removed from the room");
      } catch (e) {
        console.error("chat: closing a removed member's sockets failed:", (e as Error).message);
      }
      return c.body(null, 204);
    },
  )
  .get(
    "/:id/messages",
    describe({
      tag: TAG,
      summary: "Message history in seq order",
      description:
        "`after=<seq>` pages forward from a seq; otherwise the newest page (before `before=<seq>` if given). " +
        "`nextCursor` continues in the same direction.",
      responses: { 200: { description: "Messages, oldest first", schema: schemas.MessagePage } },
    }),
    readPrimary,
    requireUser,
    validate("param", schemas.RoomParam),
    validate("query", schemas.HistoryQuery),
    async (c) => {
      const { id } = c.req.valid("param");
      await requireMembership(c.get("db"), id, userOf(c).userId);
      const q = c.req.valid("query");
      const cur = q.cursor ? decodeCursor(q.cursor, HistoryCursor) : { a: q.after, b: q.before };
      const query: HistoryQuery = { after: cur.a, before: cur.b, limit: q.limit };
      const page = await roomStub(c.env, id).history(id, query);
      let nextCursor: string | null = null;
      const first = page.items[0];
      const last = page.items.at(-1);
      if (page.more && query.after !== undefined && last)
        nextCursor = encodeCursor({ a: last.seq, ...(query.before !== undefined ? { b: query.before } : {}) });
      if (page.more && query.after === undefined && first) nextCursor = encodeCursor({ b: first.seq });
      return c.json({ items: page.items, nextCursor });
    },
  )
  .post(
    "/:id/messages",
    describe({
      tag: TAG,
      summary: "Send a message (for clients without a socket)",
      rateLimited: true,
      description:
        "Stored before anyone sees it. The same `clientId` again returns the first message with 200. `fileId` " +
        "must be a public file or one of the sender's own.",
      responses: {
        201: { description: "Stored", schema: MessageSchema },
        200: { description: "Already stored under this clientId", schema: MessageSchema },
      },
    }),
    readPrimary,
    requireUser,
    idempotency,
    validate("param", schemas.RoomParam),
    validate("json", SendBody),
    async (c) => {
      const { id } = c.req.valid("param");
      const me = userOf(c).userId;
      await requireMembership(c.get("db"), id, me);
      // The room checks the rate limit and the file only for a new clientId: a retry gets the first message back.
      const { message, created } = unwrap(await roomStub(c.env, id).submit(id, me, c.req.valid("json")));
      return c.json(message, created ? 201 : 200);
    },
  )
  .delete(
    "/:id/messages/:seq",
    describe({
      tag: TAG,
      summary: "Delete a message (the sender, or the room's owner)",
      description:
        "The message stays in the log as a tombstone (`text` and `fileId` null, `deleted: true`), so `seq` keeps " +
        'no gaps; sockets get `{ "type": "deleted", "seq" }`; a queued push for it is not sent. Deleting a ' +
        "tombstone again is 204.",
      responses: {
        204: { description: "Deleted (or already deleted)" },
        403: { description: "Neither the sender nor the room's owner" },
        404: { description: "No such room (or not a member), or no such message" },
      },
    }),
    readPrimary,
    requireUser,
    validate("param", schemas.MessageParam),
    async (c) => {
      const { id, seq } = c.req.valid("param");
      const me = userOf(c).userId;
      const m = await requireMembership(c.get("db"), id, me);
      unwrap(await roomStub(c.env, id).deleteMessage(id, seq, me, m.me.role === "owner"));
      return c.body(null, 204);
    },
  )
  .post(
    "/:id/read",
    describe({
      tag: TAG,
      summary: "Mark messages read up to seq",
      responses: { 204: { description: "Recorded (a position never moves back)" } },
    }),
    readPrimary,
    requireUser,
    idempotency,
    validate("param", schemas.RoomParam),
    validate("json", schemas.ReadBody),
    async (c) => {
      const { id } = c.req.valid("param");
      const me = userOf(c).userId;
      await requireMembership(c.get("db"), id, me);
      unwrap(await roomStub(c.env, id).markRead(id, me, c.req.valid("json").seq));
      return c.body(null, 204);
    },
  )
  .get(
    "/:id/ws",
    describe({
      tag: TAG,
      summary: "The room's WebSocket",
      description:
        "Auth: `?ticket=` from `POST /v1/auth/socket-ticket` (recommended: no token in the URL), the " +
        "`Authorization` header, or `?token=` (kept for older clients). `?afterSeq=` replays what was missed, at " +
        "most 500 messages, then `more` (page on with `sync`). Frames: see the chat protocol (`send`, `typing`, " +
        "`read`, `sync`, `ping` → `ready`, `message`, `typing`, `read`, `presence`, `deleted`, `more`, `error`, " +
        "`pong`). Close codes: 4401 the session ended, 4403 no longer a member, 4408 heartbeat timeout.",
      auth: "user",
      responses: {
        101: { description: "Switching protocols" },
        400: { description: "Not a WebSocket upgrade" },
        401: { description: "No or bad token, or its session has ended" },
        404: { description: "No such room, or not a member" },
      },
    }),
    requireSocketUser,
    validate("param", schemas.RoomParam),
    validate("query", schemas.WsQuery),
    async (c) => {
      const { id } = c.req.valid("param");
      const q = c.req.valid("query");
      const { userId, sessionId } = userOf(c);
      if (c.req.header("upgrade")?.toLowerCase() !== "websocket")
        throw new AppError("bad_request", "Expected a WebSocket upgrade (Upgrade: websocket).");
      await requireMembership(c.get("db"), id, userId);
      // A fresh request: nothing the client sent (such as forged internal headers) reaches the room.
      const headers = new Headers({
        upgrade: "websocket",
        [INTERNAL_HEADERS.user]: userId,
        [INTERNAL_HEADERS.session]: sessionId,
        [INTERNAL_HEADERS.room]: id,
      });
      if (q.afterSeq !== undefined) headers.set(INTERNAL_HEADERS.afterSeq, String(q.afterSeq));
      const res = await roomStub(c.env, id).fetch(new Request("https://chat-room.internal/ws", { headers }));
      // The room re-checks membership (a removal may have landed since the check above) and that
      // the token's session has not ended (logout, revocation, password change).
      if (res.status === 404) throw new AppError("not_found", "No such room.");
      if (res.status === 401) throw new AppError("unauthorized", "This session has ended; sign in again.");
      return res;
    },
  );

/** Request and response schemas of the chat REST routes (validation + OpenAPI). */
import * as v from "valibot";
import { limits } from "../../config";
import { cursorParam, limitParam } from "../../lib/validation";
import { MessageSchema, Seq } from "./protocol";

const UserId = v.pipe(v.string(), v.minLength(1), v.maxLength(64));
const RoomId = v.pipe(v.string(), v.minLength(1), v.maxLength(64));

export const CreateRoomBody = v.strictObject({
  kind: v.optional(v.picklist(["direct", "group"])),
  name: v.optional(v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(limits.chatRoomNameMax))),
  memberIds: v.pipe(v.array(UserId), v.maxLength(limits.chatCreateMembersMax)),
});
export type CreateRoomInput = v.InferOutput<typeof CreateRoomBody>;

export const AddMemberBody = v.strictObject({ userId: UserId });
export const ReadBody = v.strictObject({ seq: Seq });
export const MuteBody = v.strictObject({ muted: v.boolean() });

export const RoomParam = v.strictObject({ id: RoomId });
export const MemberParam = v.strictObject({ id: RoomId, userId: UserId });

/** A seq in the path or the query string: a whole number of at most 15 digits. */
const seqString = v.pipe(v.string(), v.regex(/^\d{1,15}$/, "must be a whole number"), v.transform(Number));
const seqQuery = v.optional(seqString);
export const MessageParam = v.strictObject({ id: RoomId, seq: seqString });

export const HistoryQuery = v.object({
  before: seqQuery,
  after: seqQuery,
  limit: limitParam(limits.chatHistoryDefault, limits.chatHistoryMax),
  cursor: cursorParam,
});

export const ListQuery = v.object({
  limit: limitParam(limits.listDefault, limits.listMax),
  cursor: cursorParam,
});

export const WsQuery = v.object({
  token: v.optional(v.pipe(v.string(), v.maxLength(4096))),
  afterSeq: seqQuery,
});

const MemberSchema = v.object({ userId: v.string(), role: v.picklist(["owner", "member"]), lastReadSeq: v.number() });
export type Member = v.InferOutput<typeof MemberSchema>;

export const RoomSchema = v.object({
  id: v.string(),
  kind: v.picklist(["direct", "group"]),
  name: v.nullable(v.string()),
  createdBy: v.string(),
  createdAt: v.string(),
  members: v.array(MemberSchema),
  lastMessage: v.nullable(MessageSchema),
  /** Highest seq in the room (0 before the first message). */
  lastSeq: v.number(),
  unreadCount: v.number(),
  /** Whether the caller muted the room. */
  muted: v.boolean(),
});
export type Room = v.InferOutput<typeof RoomSchema>;

export const RoomList = v.object({ items: v.array(RoomSchema), nextCursor: v.nullable(v.string()) });
export const MessagePage = v.object({ items: v.array(MessageSchema), nextCursor: v.nullable(v.string()) });
export const MutedMember = v.object({ ...MemberSchema.entries, muted: v.boolean() });

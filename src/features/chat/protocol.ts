/**
 * The chat WebSocket frame protocol, shared by the server (the ChatRoom Durable Object) and the
 * client SDK: valibot schemas and TypeScript types for every frame in both directions. Frames are
 * JSON text. Depends only on valibot and the limits, so a client bundle can import it.
 */
import * as v from "valibot";
import { limits } from "../../config";

/**
 * A stored chat message (the contract's Message). A deleted message stays in the log as a
 * tombstone: same id, seq, clientId, sender and time, `text` and `fileId` null, and `deleted: true`
 * (the field is present only on tombstones).
 */
export const MessageSchema = v.object({
  id: v.string(),
  roomId: v.string(),
  seq: v.number(),
  clientId: v.string(),
  senderId: v.string(),
  text: v.nullable(v.string()),
  fileId: v.nullable(v.string()),
  createdAt: v.string(),
  deleted: v.optional(v.literal(true)),
});
export type Message = v.InferOutput<typeof MessageSchema>;

/** A sequence number as clients send it: a whole number from 0. */
export const Seq = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER));

/** Client-chosen message id: the dedupe key of a send, per sender. */
const ClientId = v.pipe(
  v.string(),
  v.minLength(1),
  v.maxLength(limits.chatClientIdMax),
  v.regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces"),
);

const MessageText = v.pipe(
  v.string(),
  v.maxLength(limits.chatTextMax, `must be at most ${limits.chatTextMax} characters`),
  v.check((s) => s.trim().length > 0, "must not be blank"),
);

const FileId = v.pipe(v.string(), v.minLength(1), v.maxLength(64));

/** What a send carries, over REST or a socket: text, a file, or both, never neither. */
const SendFields = {
  clientId: ClientId,
  text: v.optional(MessageText),
  fileId: v.optional(FileId),
};
const hasContent = (f: { text?: string | undefined; fileId?: string | undefined }) =>
  f.text !== undefined || f.fileId !== undefined;
const NEEDS_CONTENT = "a message needs text or fileId";

// --- client → server ---------------------------------------------------------------------

const SendFrame = v.strictObject({ type: v.literal("send"), ...SendFields });
const TypingFrame = v.strictObject({ type: v.literal("typing") });
const ReadFrame = v.strictObject({ type: v.literal("read"), seq: Seq });
const SyncFrame = v.strictObject({ type: v.literal("sync"), afterSeq: Seq });
const PingFrame = v.strictObject({ type: v.literal("ping") });

export const ClientFrameSchema = v.pipe(
  v.variant("type", [SendFrame, TypingFrame, ReadFrame, SyncFrame, PingFrame]),
  v.check((f) => f.type !== "send" || hasContent(f), NEEDS_CONTENT),
);
export type ClientFrame = v.InferOutput<typeof ClientFrameSchema>;

/** The REST body of `POST /v1/rooms/:id/messages` (the send frame without `type`). */
export const SendBody = v.pipe(
  v.strictObject(SendFields),
  v.check((f) => hasContent(f), NEEDS_CONTENT),
);
export type SendInput = v.InferOutput<typeof SendBody>;

// --- server → client ---------------------------------------------------------------------

/** Codes of `error` frames: the HTTP error vocabulary, plus `bad_frame` for unparsable JSON. */
export const ErrorFrameCode = v.picklist(["bad_frame", "validation_failed", "forbidden", "rate_limited", "internal"]);
export type ErrorFrameCode = v.InferOutput<typeof ErrorFrameCode>;

const ReadyFrame = v.object({ type: v.literal("ready"), lastSeq: v.number(), online: v.array(v.string()) });
const MessageFrame = v.object({ type: v.literal("message"), message: MessageSchema });
const TypingEvent = v.object({ type: v.literal("typing"), userId: v.string() });
const ReadEvent = v.object({ type: v.literal("read"), userId: v.string(), seq: v.number() });
const PresenceFrame = v.object({ type: v.literal("presence"), userId: v.string(), online: v.boolean() });
/** `clientId` is set when the error answers a `send`, so the client knows which message failed. */
const ErrorFrame = v.object({
  type: v.literal("error"),
  code: ErrorFrameCode,
  message: v.string(),
  clientId: v.optional(v.string()),
});
const PongFrame = v.object({ type: v.literal("pong") });
/** A replay stopped after `chatReplayPage` messages: page on with `{ type: "sync", afterSeq }` (or over REST). */
const MoreFrame = v.object({ type: v.literal("more"), afterSeq: v.number() });
/** Message `seq` was deleted; it is now a tombstone in the log (history and replays show it so). */
const DeletedFrame = v.object({ type: v.literal("deleted"), seq: v.number() });

export const ServerFrameSchema = v.variant("type", [
  ReadyFrame,
  MessageFrame,
  TypingEvent,
  ReadEvent,
  PresenceFrame,
  ErrorFrame,
  PongFrame,
  MoreFrame,
  DeletedFrame,
]);
export type ServerFrame = v.InferOutput<typeof ServerFrameSchema>;

/** Close codes (4401 the session ended, 4403 no longer a member, 4408 heartbeat timed out): src/lib/sockets.ts. */
export { CLOSE_REMOVED } from "../../lib/sockets";

export type ParsedFrame =
  | { ok: true; frame: ClientFrame }
  | { ok: false; code: ErrorFrameCode; message: string; clientId?: string };

/** Parses one incoming text frame; never throws. */
export function parseClientFrame(data: string | ArrayBuffer): ParsedFrame {
  if (typeof data !== "string") return { ok: false, code: "bad_frame", message: "frames must be JSON text" };
  if (data.length > limits.chatFrameMaxBytes)
    return { ok: false, code: "bad_frame", message: `frames are limited to ${limits.chatFrameMaxBytes} bytes` };
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    return { ok: false, code: "bad_frame", message: "frame is not valid JSON" };
  }
  const r = v.safeParse(ClientFrameSchema, raw);
  if (r.success) return { ok: true, frame: r.output };
  const issue = r.issues[0];
  const path = issue.path?.map((p) => String(p.key)).join(".");
  const clientId =
    typeof raw === "object" && raw !== null && "clientId" in raw && typeof raw.clientId === "string"
      ? raw.clientId
      : undefined;
  return {
    ok: false,
    code: "validation_failed",
    message: path ? `${path}: ${issue.message}` : issue.message,
    ...(clientId ? { clientId } : {}),
  };
}

/**
 * The one place a room's refusal becomes an answer: the same refusal is the same `code` whether
 * it reaches a client as a problem over REST or as an error frame over its socket.
 */
import { AppError, type FieldError } from "../../errors";
import type { ErrorFrameCode, ServerFrame } from "./protocol";

/** CHAT_LIMITER's period (wrangler.toml), for Retry-After. */
const CHAT_LIMIT_PERIOD_SEC = 10;

/** Why a room refused: one of the codes both the REST and the socket side know. */
export interface Refusal {
  code: Extract<ErrorFrameCode, "validation_failed" | "forbidden" | "rate_limited"> | "not_found";
  detail: string;
  errors?: FieldError[];
}

/** Result of a room RPC that can be refused. */
export type RoomResult<T> = { ok: true; value: T } | ({ ok: false } & Refusal);

/** A file the sender may not attach (not theirs and not public, or not there). */
export const fileRefusal = (): Refusal => ({
  code: "validation_failed",
  detail: "fileId must be a public file or one of your own.",
  errors: [{ path: "fileId", message: "not a file you may share" }],
});

/** The REST answer: the refusal as a problem (Retry-After on a rate limit). */
function refusalError(r: Refusal): AppError {
  return new AppError(r.code, r.detail, {
    ...(r.errors ? { errors: r.errors } : {}),
    ...(r.code === "rate_limited" ? { headers: { "retry-after": String(CHAT_LIMIT_PERIOD_SEC) } } : {}),
  });
}

/** The value of a room call, or its refusal thrown as the REST problem. */
export function unwrap<T>(r: RoomResult<T>): T {
  if (!r.ok) throw refusalError(r);
  return r.value;
}

/** The socket answer: the refusal as an error frame (naming the send's clientId, if any). */
export function refusalFrame(r: Refusal, clientId?: string): Extract<ServerFrame, { type: "error" }> {
  const code: ErrorFrameCode = r.code === "not_found" ? "validation_failed" : r.code;
  return { type: "error", code, message: r.detail, ...(clientId !== undefined ? { clientId } : {}) };
}

/**
 * Opaque cursors: base64url JSON that clients hand back unchanged. They hold only positions
 * (a sort value and id, or a change sequence number), which are always bound as parameters,
 * so a forged cursor can move a page but never widen what the caller may see.
 */
import * as v from "valibot";
import { AppError } from "../errors";
import { b64url, fromB64url } from "./crypto";

export const encodeCursor = (value: unknown): string => b64url(new TextEncoder().encode(JSON.stringify(value)));

/** Decodes a cursor made by `encodeCursor`; anything else is a 400 on `param`. */
export function decodeCursor<T>(raw: string, schema: v.GenericSchema<unknown, T>, param = "cursor"): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(fromB64url(raw)));
  } catch {
    parsed = undefined;
  }
  const r = v.safeParse(schema, parsed);
  if (!r.success) {
    throw new AppError("validation_failed", `The ${param} is not valid; use the one a previous page returned.`, {
      errors: [{ path: param, message: "invalid cursor" }],
    });
  }
  return r.output;
}

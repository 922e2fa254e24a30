/** Request and response schemas of `/v1/blocks` (validation + OpenAPI). */
import * as v from "valibot";
import { limits } from "../../config";
import { cursorParam, limitParam } from "../../lib/validation";

const UserId = v.pipe(v.string(), v.minLength(1), v.maxLength(64));

export const BlockBody = v.strictObject({ userId: UserId });
export const BlockParam = v.strictObject({ userId: UserId });
export const ListQuery = v.object({ limit: limitParam(limits.listDefault, limits.listMax), cursor: cursorParam });

/** A block as its owner sees it: whom they blocked, and when. */
export const BlockSchema = v.object({ userId: v.string(), createdAt: v.string() });
export type Block = v.InferOutput<typeof BlockSchema>;

export const BlockList = v.object({ items: v.array(BlockSchema), nextCursor: v.nullable(v.string()) });

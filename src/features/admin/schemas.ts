/** Request and response shapes of the admin API (API.md "Administration (v1.1)"). */
import * as v from "valibot";
import { limits } from "../../config";
import { cursorParam, limitParam } from "../../lib/validation";
import { Name, UserSchema } from "../auth";

export const AdminUser = v.object({ ...UserSchema.entries, updatedAt: v.string() });
export type AdminUser = v.InferOutput<typeof AdminUser>;

export const AdminUserDetail = v.object({
  ...AdminUser.entries,
  counts: v.object({
    sessions: v.number(),
    records: v.number(),
    files: v.number(),
    bytes: v.number(),
    rooms: v.number(),
    devices: v.number(),
  }),
});
export type AdminUserDetail = v.InferOutput<typeof AdminUserDetail>;

export const AdminUserList = v.object({ items: v.array(AdminUser), nextCursor: v.nullable(v.string()) });

export const UsersQuery = v.strictObject({
  q: v.optional(v.pipe(v.string(), v.trim(), v.maxLength(limits.adminSearchMax))),
  limit: limitParam(limits.listDefault, limits.listMax),
  cursor: cursorParam,
});

export const PatchUserBody = v.pipe(
  v.strictObject({
    disabled: v.optional(v.boolean()),
    role: v.optional(v.picklist(["user", "admin"])),
    name: v.optional(v.nullable(Name)),
  }),
  v.check((b) => Object.keys(b).length > 0, "send at least one of disabled, role, name"),
);
export type PatchUser = v.InferOutput<typeof PatchUserBody>;

export const AuditEntry = v.object({
  id: v.string(),
  actorId: v.string(),
  action: v.string(),
  target: v.string(),
  at: v.string(),
  requestId: v.string(),
  /** The `X-Request-Id` the client sent, when it sent a valid one. */
  clientRequestId: v.optional(v.string()),
  detail: v.optional(v.record(v.string(), v.unknown())),
});
export type AuditEntry = v.InferOutput<typeof AuditEntry>;

export const AuditList = v.object({ items: v.array(AuditEntry), nextCursor: v.nullable(v.string()) });

export const AuditQuery = v.strictObject({
  limit: limitParam(limits.listDefault, limits.listMax),
  cursor: cursorParam,
});

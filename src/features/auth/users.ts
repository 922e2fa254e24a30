/** The user row and its public shape: what every part of the auth feature builds on. */
import { eq } from "drizzle-orm";
import type { Database } from "../../db";
import { users } from "../../db/schema";
import { AppError } from "../../errors";
import { newId, nowIso } from "../../lib/ids";
import type { User } from "./schemas";

export type UserRow = typeof users.$inferSelect;

/** The public shape of a user. */
export function toUser(u: UserRow): User {
  return {
    id: u.id,
    email: u.email,
    emailVerified: u.emailVerified,
    name: u.name,
    avatarFileId: u.avatarFileId,
    anonymous: u.anonymous,
    role: u.role,
    disabled: u.disabled,
    locale: u.locale,
    createdAt: u.createdAt,
  };
}

/** What a disabled account gets from login, refresh and provider sign-in. */
export const accountDisabled = () => new AppError("account_disabled", "This account has been disabled.");

export const addSeconds = (iso: string, s: number) => new Date(Date.parse(iso) + s * 1000).toISOString();

/** A new user row: an enabled, unverified, regular account without email or password unless `fields` say so. */
export function newUserRow(fields: Partial<Omit<UserRow, "id" | "createdAt" | "updatedAt">>, now = nowIso()): UserRow {
  return {
    id: newId(),
    email: null,
    emailVerified: false,
    passwordHash: null,
    name: null,
    avatarFileId: null,
    anonymous: false,
    role: "user",
    disabled: false,
    locale: null,
    ...fields,
    createdAt: now,
    updatedAt: now,
  };
}

export async function getUser(db: Database, id: string): Promise<UserRow | undefined> {
  return db.select().from(users).where(eq(users.id, id)).get();
}

export async function getUserByEmail(db: Database, email: string): Promise<UserRow | undefined> {
  return db.select().from(users).where(eq(users.email, email)).get();
}

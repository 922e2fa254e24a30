/**
 * Teams: groups of users that share data, their memberships (one owner each) and the invitations
 * mailed to join them. Only src/features/teams reads or writes these tables.
 */
import { sql } from "drizzle-orm";
import { index, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { users } from "./auth";

export const TEAM_ROLES = ["owner", "admin", "member", "viewer"] as const;
export type TeamRole = (typeof TEAM_ROLES)[number];

export const teams = sqliteTable("teams", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  createdAt: text("created_at").notNull(),
  updatedAt: text("updated_at").notNull(),
});

/** Who belongs to which team, with what role. Exactly one `owner` per team (kept by the service's batches). */
export const teamMembers = sqliteTable(
  "team_members",
  {
    teamId: text("team_id")
      .notNull()
      .references(() => teams.id, { onDelete: "cascade" }),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    role: text("role", { enum: TEAM_ROLES }).notNull(),
    joinedAt: text("joined_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.teamId, t.userId] }),
    /** "My teams", and account deletion. */
    index("team_members_user_idx").on(t.userId, t.teamId),
    /** A team's members by join time (the member list; the longest-standing admin). */
    index("team_members_team_joined_idx").on(t.teamId, t.joinedAt, t.userId),
  ],
);

/**
 * An invitation mailed to `email`: only the SHA-256 of its token is kept. Pending while neither used
 * nor revoked and before `expires_at`; used and revoked rows stay (a reused token is told apart
 * from an unknown one) until the team goes.
 */
export const teamInvitations = sqliteTable(
  "team_invitations",
  {
    id: text("id").primaryKey(),
    teamId: text("team_id")
      .notNull()
      .references(() => teams.id, { onDelete: "cascade" }),
    email: text("email").notNull(),
    role: text("role", { enum: TEAM_ROLES }).notNull(),
    tokenHash: text("token_hash").notNull(),
    expiresAt: text("expires_at").notNull(),
    invitedBy: text("invited_by").references(() => users.id, { onDelete: "set null" }),
    createdAt: text("created_at").notNull(),
    usedAt: text("used_at"),
    usedBy: text("used_by"),
    revokedAt: text("revoked_at"),
  },
  (t) => [
    uniqueIndex("team_invitations_token_unique").on(t.tokenHash),
    /** A team's invitations, newest first. */
    index("team_invitations_team_created_idx").on(t.teamId, t.createdAt, t.id),
    /** Account deletion clears the inviter (FK set null) without a scan. */
    index("team_invitations_invited_by_idx").on(t.invitedBy).where(sql`${t.invitedBy} IS NOT NULL`),
  ],
);

/**
 * The contracts features implement to take part in the app's lifecycle: account deletion,
 * housekeeping, ending sessions, background jobs. This module imports no feature: each feature
 * exports its parts from its own `index.ts`, and the root assembles them (`router.ts` for the request
 * path, `jobs.ts` for the queue, `scheduled.ts` for the cron). A feature that needs the assembled
 * list (account deletion, ending sessions) gets it from `c.get("lifecycle")`, never by importing the
 * other features.
 */
import type { SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { type Database, primaryDb } from "./db";
import type { TeamRole } from "./db/schema";

// --- account deletion ---------------------------------------------------------------------------

interface DeletionContext {
  env: Env;
  db: Database;
  userId: string;
  /**
   * The assembled lifecycle, for a hook whose work deletes other things with their own hooks (teams
   * the account owned run the team deletion hooks). Set by account deletion; absent only where a
   * test calls a hook by itself.
   */
  lifecycle?: Lifecycle;
}

export interface DeletionPlan {
  /** D1 statements run in the same atomic batch that deletes the user row. */
  statements?: BatchItem<"sqlite">[];
  /** Work after the batch committed (R2 objects, Durable Objects); may run in waitUntil. */
  after?: () => Promise<void>;
}

/** A feature's part of account deletion. Runs before the batch, so it can read what it must clean up. */
export type DeletionHook = (ctx: DeletionContext) => Promise<DeletionPlan>;

// --- team deletion ------------------------------------------------------------------------------

interface TeamDeletionContext {
  env: Env;
  db: Database;
  teamId: string;
}

/**
 * A feature's part of deleting a team (team-scoped records, files, rooms): runs before the team's
 * batch, its statements join that batch (before the team row goes), its `after` runs once it
 * committed. Called by `DELETE /v1/teams/:id` and when account deletion deletes a team its owner
 * left with no admin. Empty until features keep team-scoped data.
 */
export type TeamDeletionHook = (ctx: TeamDeletionContext) => Promise<DeletionPlan>;

// --- team memberships ---------------------------------------------------------------------------

interface MembershipContext {
  env: Env;
  db: Database;
  teamId: string;
  /** Whose membership changed; null: every member's (the team was deleted). */
  userId: string | null;
  /** The new role; null when the member left or was removed (or the team was deleted). */
  role: TeamRole | null;
}

/**
 * A feature's reaction to a membership that changed (joined, role changed, left, removed, team
 * deleted), after the change committed: e.g. closing sockets that followed the team (4403). Called
 * in `waitUntil`; failures are logged (each socket kind re-checks membership when it reads).
 */
export type MembershipHook = (ctx: MembershipContext) => Promise<void>;

// --- housekeeping -------------------------------------------------------------------------------

/** A cron task (every 15 minutes, wrangler.toml `crons`); `db` reads the primary. */
export type ScheduledTask = (env: Env, db: Database, now: Date) => Promise<void>;

// --- ending sessions ----------------------------------------------------------------------------

/** The sessions that ended: some of the user's sessions, or all of them. */
export type EndedSessions = string[] | "all";

export interface EndedSessionsContext {
  env: Env;
  db: Database;
  userId: string;
  sessions: EndedSessions;
}

/**
 * Closes one kind of socket opened with the ended sessions (close code 4401); throws when some
 * could not be reached. The fast path only: each socket kind also re-checks, in its own heartbeat,
 * that the sessions of its open sockets still exist, so a lost call still cuts the socket within
 * one heartbeat period. Sockets keep their session id in their state and tags, so neither path
 * costs a query per frame.
 */
type SessionSocketCloser = (ctx: EndedSessionsContext) => Promise<void>;

// --- background jobs ----------------------------------------------------------------------------

/** A queue job: a `type` plus its own fields. Each feature declares the jobs it produces. */
export interface BaseJob {
  type: string;
}

/** Handles one job; a thrown error retries the message with backoff, a resolved one acks it. */
export type JobHandler<J extends BaseJob> = (env: Env, job: J) => Promise<unknown>;

/** Sends a job to the JOBS queue. */
export async function enqueue<J extends BaseJob>(env: Env, job: J): Promise<void> {
  await env.JOBS.send(job, { contentType: "json" });
}

// --- the audit trail ---------------------------------------------------------------------------

/** The actor id of the service key in the audit log. */
export const SERVICE_ACTOR = "service";

/** One action for the audit log: who (an admin's user id, or `service`), what, to what, in which request. */
export interface AuditEvent {
  actorId: string;
  /** `<resource>.<verb>`, e.g. `record.update`. */
  action: string;
  target: string;
  requestId: string;
  clientRequestId: string | null;
  detail?: Record<string, unknown> | undefined;
}

/**
 * The audit row of an action as a statement for the action's own D1 batch; with `when`, written only
 * if it holds (e.g. `changes() > 0`: the statement before it wrote something). The admin feature keeps
 * the log; another feature reaches it as `c.get("lifecycle").auditStatement`.
 */
type AuditStatement = (db: Database, e: AuditEvent, when?: SQL) => BatchItem<"sqlite">;

// --- what a feature contributes, and the assembled whole -----------------------------------------

/** What one feature adds to the lifecycle; every part is optional. */
export interface FeatureParts {
  deletionHooks?: DeletionHook[];
  teamDeletionHooks?: TeamDeletionHook[];
  membershipHooks?: MembershipHook[];
  cleanupTasks?: ScheduledTask[];
  sessionSocketClosers?: SessionSocketCloser[];
  /** The feature that keeps the audit log (exactly one). */
  auditStatement?: AuditStatement;
}

/** Every feature's parts, assembled once at the root and put on `c.get("lifecycle")`. */
export interface Lifecycle {
  /** In order: each runs before the account's batch, their statements join it. */
  deletionHooks: DeletionHook[];
  /** Each runs before a team's deletion batch; their statements join it. */
  teamDeletionHooks: TeamDeletionHook[];
  /** Each runs after a membership changed. */
  membershipHooks: MembershipHook[];
  sessionSocketClosers: SessionSocketCloser[];
  auditStatement: AuditStatement;
}

export function assemble(parts: FeatureParts[]): Lifecycle & { cleanupTasks: ScheduledTask[] } {
  const audits = parts.flatMap((p) => (p.auditStatement ? [p.auditStatement] : []));
  if (audits.length !== 1) throw new Error(`exactly one feature keeps the audit log (found ${audits.length})`);
  return {
    auditStatement: audits[0]!,
    deletionHooks: parts.flatMap((p) => p.deletionHooks ?? []),
    teamDeletionHooks: parts.flatMap((p) => p.teamDeletionHooks ?? []),
    membershipHooks: parts.flatMap((p) => p.membershipHooks ?? []),
    sessionSocketClosers: parts.flatMap((p) => p.sessionSocketClosers ?? []),
    cleanupTasks: parts.flatMap((p) => p.cleanupTasks ?? []),
  };
}

/**
 * Closes the sockets opened with `sessions` of `userId`, of every kind. Call it after the D1 write
 * that ended the sessions committed (in `waitUntil`). Never throws: failures are logged, and the
 * heartbeat re-checks are the backstop.
 */
export async function endSessionSockets(
  lifecycle: Lifecycle,
  env: Env,
  userId: string,
  sessions: EndedSessions,
): Promise<void> {
  if (sessions !== "all" && sessions.length === 0) return;
  // The primary: a replica that lags could miss a room the user joined a moment ago.
  const ctx: EndedSessionsContext = { env, db: primaryDb(env.DB), userId, sessions };
  const results = await Promise.allSettled(lifecycle.sessionSocketClosers.map((close) => close(ctx)));
  for (const r of results) {
    if (r.status === "rejected") {
      console.error(
        "closing the sockets of ended sessions failed (the heartbeat re-check will):",
        (r.reason as Error)?.message ?? String(r.reason),
      );
    }
  }
}

/** What the pieces of the app's logic hand each other: an event as hooks and webhooks see it, a run, its outcome. */

/** A record as the API shows it (field names, booleans, arrays), or a user's or file's public shape. */
export type EventRecord = Record<string, unknown>;

/** One change somebody listens to (an `events` row, its JSON images shaped like the API's records). */
export interface OutpostEvent {
  /** The change's sequence number: its identity, the same on every attempt of every run. */
  seq: number;
  /** `posts.create`, `users.delete`, `files.create`... */
  event: string;
  recordId: string;
  /** The record after the write (null for a delete). */
  record: EventRecord | null;
  /** The record before the write (null for a create). */
  previous: EventRecord | null;
  /** When the change was committed (ISO 8601). */
  at: string;
}

/** One run of an event for one target (`hook` or a webhook's id), as claimed for this attempt. */
export interface Run {
  /** The delivery id: the same on every attempt. */
  id: string;
  seq: number;
  target: string;
  /** This attempt's number (1 for the first). */
  attempt: number;
  createdAt: string;
}

/**
 * How an attempt ended. `status`: a webhook's HTTP answer; `final`: a failure no retry can mend (the
 * webhook was deleted or disabled), so the run is parked at once.
 */
export type RunOutcome = { ok: true; status?: number } | { ok: false; error: string; status?: number; final?: boolean };

/** A record read or written through `app.records(name)`. */
export type AppRecord = Record<string, unknown> & { id: string; version: number };

/**
 * What hooks, schedules and app routes may use: records read and written as the service key
 * through the routes' own write path (so their before hooks run, and their changes reach
 * `/changes`, live data, after hooks and webhooks), mail and push.
 */
export interface AppServices {
  env: Env;
  records(collection: string): {
    get(id: string): Promise<AppRecord | null>;
    list(opts?: { where?: Record<string, unknown>; limit?: number; sort?: string }): Promise<AppRecord[]>;
    create(data: Record<string, unknown>): Promise<AppRecord>;
    update(id: string, data: Record<string, unknown>, opts?: { ifVersion?: number }): Promise<AppRecord>;
    delete(id: string): Promise<void>;
  };
  /** Sends a mail through the configured provider (the development outbox locally). */
  mail(m: { to: string; subject: string; text: string }): Promise<void>;
  /** Queues a push notification to every device of these users. */
  push(userIds: string[], m: { title: string; body: string; data?: Record<string, string> }): Promise<void>;
}

/** The context services are made from: the request's (or job's) database and deferred-work hook. */
export interface ServiceContext {
  env: Env;
  db: unknown;
  waitUntil: (p: Promise<unknown>) => void;
  /** How deep hooks that write through `app` are nested (a hook's write runs that collection's hooks). */
  depth?: number;
}

/**
 * The Queue jobs of the logic pipeline: `events.drain` makes the runs of undispatched events (sent
 * after a write somebody listens to, and by the cron's backstop); `events.run` runs one (a hook, or
 * a webhook delivery) by its id.
 */
export type EventJob = { type: "events.drain" } | { type: "events.run"; id: string };

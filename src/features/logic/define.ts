/**
 * What the app's own folder declares its logic with (src/app/logic.ts): hooks per collection, for
 * users and for files, and `refuse()`. Declarations only; src/features/logic runs them.
 */
import type { AppServices, OutpostEvent } from "./types";

/** A declared collection, as far as hooks need one (its row type and its name under the collection mark). */
interface Declared {
  readonly $record: unknown;
}
/** A stored record of collection `T`, as the API shows it. */
export type RecordOf<T extends Declared> = T["$record"];
// The mark collection() puts on its table (src/features/collections/define.ts), read without importing it.
const COLLECTION = Symbol.for("outpost.collection");
type Awaitable<T> = T | Promise<T>;

/** Who made the write a before hook looks at. */
export type Caller = { kind: "user"; userId: string } | { kind: "service" } | { kind: "anonymous" };

interface BeforeBase {
  caller: Caller;
  /** Reads and writes as the service key, through the same write path as the routes (their hooks run too). */
  app: AppServices;
}
export interface BeforeCreate<R> extends BeforeBase {
  /** The validated body (the client id among it, if one was sent). Return it changed, or nothing to keep it. */
  data: Partial<R>;
}
export interface BeforeUpdate<R> extends BeforeBase {
  id: string;
  /** The fields being written (PATCH: the changed ones; PUT: all). */
  data: Partial<R>;
  /** The record as stored now (read once, on first call; null when it does not exist). */
  current(): Promise<R | null>;
}
export interface BeforeDelete<R> extends BeforeBase {
  id: string;
  current(): Promise<R | null>;
}

/** An after hook's argument: the change (its `seq` is the same on every attempt) and its images. */
export interface After<R> {
  event: Omit<OutpostEvent, "record" | "previous">;
  record: R | null;
  previous: R | null;
  app: AppServices;
}

/** What a before hook returns: the data to write instead, or nothing (a hook that only checks). */
// biome-ignore lint/suspicious/noConfusingVoidType: a hook with no return statement returns void
type Changed<R> = Awaitable<Partial<R> | void>;

export interface CollectionHooks<R> {
  before?: {
    create?: (x: BeforeCreate<R>) => Changed<R>;
    update?: (x: BeforeUpdate<R>) => Changed<R>;
    delete?: (x: BeforeDelete<R>) => Awaitable<void>;
  };
  after?: {
    create?: (x: After<R>) => Awaitable<void>;
    update?: (x: After<R>) => Awaitable<void>;
    delete?: (x: After<R>) => Awaitable<void>;
  };
}

/** A user as hooks see one (never a password hash). */
export interface HookUser {
  id: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
  anonymous: boolean;
  locale?: string | null;
  createdAt: string;
}

/** A file as hooks see one. */
export interface HookFile {
  id: string;
  ownerId: string;
  name: string;
  contentType: string;
  size: number;
  visibility: "public" | "private";
  teamId: string | null;
  createdAt: string;
}

export interface UserHooks {
  before?: {
    /** Every sign-up (password, guest, provider ID token): `data` is what the account is made with. */
    create?: (
      x: { data: { email: string | null; name: string | null; anonymous: boolean } } & BeforeBase,
    ) => Awaitable<void>;
  };
  after?: { create?: (x: After<HookUser>) => Awaitable<void>; delete?: (x: After<HookUser>) => Awaitable<void> };
}

export interface FileHooks {
  before?: {
    /** Before an upload's bytes are stored (simple and resumable uploads): `size` as declared (null: unknown yet). */
    create?: (
      x: {
        data: { name: string; contentType: string; size: number | null; visibility: string; teamId: string | null };
      } & BeforeBase,
    ) => Awaitable<void>;
  };
  after?: { create?: (x: After<HookFile>) => Awaitable<void> };
}

export const HOOKS = Symbol.for("outpost.hooks");

/** What a `hooks()` / `userHooks()` / `fileHooks()` export carries. */
export interface HookSet {
  readonly [HOOKS]: {
    /** The event prefix: the collection's name, `users` or `files`. */
    source: string;
    before: Partial<Record<"create" | "update" | "delete", (x: never) => unknown>>;
    after: Partial<Record<"create" | "update" | "delete", (x: never) => unknown>>;
  };
}

const set = (source: string, spec: { before?: object; after?: object }): HookSet => ({
  [HOOKS]: { source, before: { ...spec.before }, after: { ...spec.after } },
});

/** The hooks of one collection. */
export function hooks<T extends Declared>(col: T, spec: CollectionHooks<RecordOf<T>>): HookSet {
  const meta = (col as unknown as Record<symbol, { name: string } | undefined>)[COLLECTION];
  if (!meta) throw new Error("hooks(): pass a collection() declared in src/app/collections.ts");
  return set(meta.name, spec);
}

/** The hooks of accounts: `before.create` on every sign-up, `after.create` / `after.delete`. */
export const userHooks = (spec: UserHooks): HookSet => set("users", spec);

/** The hooks of files: `before.create` before an upload stores bytes, `after.create` once a file is ready. */
export const fileHooks = (spec: FileHooks): HookSet => set("files", spec);

export const isHookSet = (x: unknown): x is HookSet => typeof x === "object" && x !== null && HOOKS in x;

/** Thrown by `refuse()`: the request ends with this status and code; nothing is written. */
export class Refusal extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const CODE_RE = /^[a-z][a-z0-9_]{1,63}$/;

/** Refuses the write from a before hook: `refuse(422, "content_refused", "Links to spam are not allowed.")`. */
export function refuse(status: number, code: string, message: string): never {
  if (!Number.isInteger(status) || status < 400 || status > 499)
    throw new Error(`refuse: status ${status} is not a 4xx`);
  if (!CODE_RE.test(code)) throw new Error(`refuse: code "${code}" must match ${CODE_RE}`);
  throw new Refusal(status, code, message);
}

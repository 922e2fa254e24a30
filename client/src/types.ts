/** Public data types of the Outpost contract, as the SDK hands them to the app. */

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export interface User {
  id: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
  avatarFileId: string | null;
  anonymous: boolean;
  createdAt: string;
  role?: "user" | "admin";
  disabled?: boolean;
  /** The device language mails use (BCP 47). */
  locale?: string | null;
}

/** The signed-in session as the SDK keeps it. `expiresAt` is the access token's expiry in ms on this device's clock. */
export interface Session {
  accessToken: string;
  refreshToken: string;
  expiresAt: number;
  /** How long the access token lived when issued (ms); the refresh margin is at most half of it. */
  lifetimeMs?: number;
  user: User | null;
}

/** A sign-in that needs its second factor: finish it with `auth.mfa.verify(mfaToken, code)`. */
export interface MfaChallenge {
  mfaRequired: true;
  mfaToken: string;
  methods: ("totp" | "recovery")[];
}

/** What a sign-in answers: the signed-in user, or (the account has a second factor) an `MfaChallenge`. */
export type SignInResult = (User & { mfaRequired?: undefined }) | MfaChallenge;

export type AuthEvent = "INITIAL_SESSION" | "SIGNED_IN" | "SIGNED_OUT" | "TOKEN_REFRESHED" | "USER_UPDATED";

export interface SessionInfo {
  id: string;
  createdAt: string;
  lastUsedAt: string;
  userAgent: string | null;
  current: boolean;
}

// --- collections -------------------------------------------------------------------------

/** Fields the server sets on every record. */
export interface SystemFields {
  id: string;
  ownerId: string | null;
  createdAt: string;
  updatedAt: string;
  version: number;
}

/** A field map (`npm run client:types` writes one per declared collection). */
export type Fields = { [field: string]: unknown };

/** The types of one collection: its fields and what `create` accepts (fields with a default are optional). */
export interface CollectionTypes<
  F extends Fields = Fields,
  C extends Fields = Partial<F>,
  R extends References = References,
> {
  fields: F;
  create: C;
  /** What each reference field expands to (`expand`): the referenced collection's record, or a user's profile. */
  refs?: R;
}

/** A reference field → the record it expands to. */
export type References = { [field: string]: object };

/** A user as a reference expands to it: the public profile. */
export interface UserProfile {
  id: string;
  name: string | null;
  avatarFileId: string | null;
}

/** The references of a collection's types (none when not generated). */
export type RefsOf<T> = T extends CollectionTypes<Fields, Fields, infer R> ? R : References;

/** A record with `expand` for the reference fields `K` (each the referenced record, or null when unreadable). */
export type Expanded<F, R, K extends keyof R> = RecordOf<F> & { expand: { [k in K]: R[k] | null } };

export type CollectionMap = { [name: string]: CollectionTypes };

/** Without generated types: any collection name, JSON fields. */
export type UntypedCollections = { [name: string]: CollectionTypes<{ [field: string]: Json }> };

export type RecordOf<F> = SystemFields & F;

type Filterable<F> = F & { ownerId: string | null; createdAt: string; updatedAt: string };
type Eq<V> = { $eq?: V; $ne?: V; $in?: V[] };
type Range<V> = { $gt?: V; $gte?: V; $lt?: V; $lte?: V };

/** What `where` accepts for one field, by its type (arrays: `$contains` only; strings: also ranges and `$contains`). */
export type Condition<V> = [V] extends [readonly unknown[]]
  ? { $contains: string }
  : [NonNullable<V>] extends [boolean]
    ? V | Eq<V>
    : [NonNullable<V>] extends [number]
      ? V | (Eq<V> & Range<V>)
      : [NonNullable<V>] extends [string]
        ? V | (Eq<V> & Range<V> & { $contains?: string })
        : V | Eq<V>;

/** A filter over declared fields and ownerId, createdAt, updatedAt; several keys mean AND. */
export type Where<F> = { [K in keyof Filterable<F>]?: Condition<Filterable<F>[K]> };

/** A sort key: a field (not an array), `-field` for descending. */
export type Sort<F> = {
  [K in keyof Filterable<F> & string]: Filterable<F>[K] extends readonly unknown[] ? never : K | `-${K}`;
}[keyof Filterable<F> & string];

export interface Query<F> {
  where?: Where<F>;
  /** Default `-createdAt`. */
  sort?: Sort<F>;
  limit?: number;
}

/** What a write other than create may send: never `teamId` (a record stays in its team). */
export type Writable<F> = Omit<F, "teamId">;

/** A live query; on a team-scoped collection (`teamId` among its fields), `teamId` follows that one team. */
export type WatchQuery<F> = Query<F> & ("teamId" extends keyof F ? { teamId?: string } : { teamId?: never });

/** A deleted record in the change feed. */
export interface Tombstone {
  id: string;
  deleted: true;
  version: number;
}

// --- files -------------------------------------------------------------------------------

export interface FileInfo {
  id: string;
  name: string;
  contentType: string;
  size: number;
  visibility: "public" | "private";
  ownerId: string;
  /** The team the file belongs to; absent on files outside teams. */
  teamId?: string;
  createdAt: string;
  url: string;
  sha256?: string | null;
  width?: number | null;
  height?: number | null;
  /**
   * Images: a ThumbHash (base64) for a blurred preview before the bytes arrive; null for other files and until
   * analysed.
   */
  placeholder?: string | null;
}

// --- chat --------------------------------------------------------------------------------

export interface Message {
  id: string;
  roomId: string;
  seq: number;
  clientId: string;
  senderId: string;
  text: string | null;
  fileId: string | null;
  createdAt: string;
  /** A deleted message keeps its seq (history may list it as `{ seq, deleted: true }`). */
  deleted?: boolean;
}

export interface RoomMember {
  userId: string;
  role: "owner" | "member";
  lastReadSeq: number;
}

export interface RoomInfo {
  id: string;
  kind: "direct" | "group";
  name: string | null;
  createdBy: string;
  createdAt: string;
  members: RoomMember[];
  lastMessage: Message | null;
  unreadCount: number;
}

// --- push --------------------------------------------------------------------------------

export interface DeviceRegistration {
  token: string;
  platform: "ios" | "android" | "web";
  provider: "fcm" | "apns" | "expo";
}

export interface Device extends DeviceRegistration {
  id: string;
  createdAt: string;
}

/** A page of a list route. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
  /** With `count: true` (records): every record the caller may list that matches `where`. */
  total?: number;
}

/**
 * @outpost/client: the client SDK of Outpost. `createClient({ url, storage })`, then
 * `client.auth`, `client.collection(name)`, `client.room(id)`, `client.files`, `client.teams`, `client.app`,
 * `client.registerDevice`.
 */

export type {
  AppCallOptions,
  AppMethod,
  AppOperation,
  AppPath,
  AppRouteMap,
  AppRoutes,
  UntypedAppRoutes,
} from "./app.js";
export type { AppCheckProof, AppCheckProvider } from "./app-check.js";
export type { Auth } from "./auth.js";
export type { Room, RoomEvents, Rooms } from "./chat.js";
export { type ClientOptions, createClient, OutpostClient } from "./client.js";
export type { Collection, WriteOptions } from "./collections.js";
export { type ErrorCode, type FieldError, OutpostError, UpgradeRequiredError } from "./errors.js";
export type { Files, ThumbPreset, UploadInput, UploadOptions } from "./files.js";
export type { Fetch, RequestOptions } from "./http.js";
export type { Pages } from "./pages.js";
export type { CredentialCall, Passkey, Passkeys } from "./passkeys.js";
export type { AppInfo, ConfigValues, Links, RemoteConfig, ShortLink } from "./release.js";
export type { WebSocketConstructor, WebSocketLike } from "./socket.js";
export { type KeyValueStorage, memoryStorage, webStorage } from "./storage.js";
export { type LocalStore, memoryStore, type StoredRecord } from "./store.js";
export type { Conflict, PendingWrite, Resolution, Snapshot } from "./sync.js";
export type { Team, TeamInvitation, TeamMember, TeamRole, Teams } from "./teams.js";
export type * from "./types.js";

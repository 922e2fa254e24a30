/** `createClient`: one object for the whole SDK. */
import { type AppRouteMap, AppRoutes, type UntypedAppRoutes } from "./app.js";
import { AppCheck, type AppCheckProvider } from "./app-check.js";
import { Auth } from "./auth.js";
import { Room, Rooms } from "./chat.js";
import { Collection } from "./collections.js";
import type { Core } from "./core.js";
import { enc } from "./core.js";
import type { OutpostError } from "./errors.js";
import { Files } from "./files.js";
import { type Fetch, Http, type RequestOptions } from "./http.js";
import { type AppInfo, type ConfigValues, Links, RemoteConfig } from "./release.js";
import type { SocketEnv, WebSocketConstructor } from "./socket.js";
import { type KeyValueStorage, memoryStorage, readJson, writeJson } from "./storage.js";
import { type LocalStore, memoryStore } from "./store.js";
import { type Conflict, type PendingWrite, type Resolution, Sync } from "./sync.js";
import { Teams } from "./teams.js";
import type {
  CollectionMap,
  Device,
  DeviceRegistration,
  References,
  RefsOf,
  UntypedCollections,
  User,
} from "./types.js";
import { noop } from "./util.js";

export interface ClientOptions<C extends CollectionMap = UntypedCollections> {
  /** The server's base URL, e.g. `https://api.example.com` (without `/v1`). */
  url: string;
  /** This app's platform and version (sent as `Outpost-Client` on every request: remote config, forced updates). */
  app?: AppInfo;
  /** Where the session, the write queue, chat outboxes, upload URLs and the push token are kept (default: memory). */
  storage?: KeyValueStorage;
  /** The local record store (default: memory). */
  store?: LocalStore;
  /** Prefix of every storage key (default `outpost.`): two clients on one storage need different ones. */
  storageKey?: string;
  /** Field defaults per collection, to show records created offline complete (`npm run client:types` writes them). */
  defaults?: { [K in keyof C]?: Partial<C[K]["fields"]> };
  /** A queued write met a newer version on the server (412). Default: the server's version wins. */
  onConflict?: (conflict: Conflict) => Resolution | Promise<Resolution>;
  /** A queued write the server refused for good after its call had returned (it is dropped and undone locally). */
  onSyncError?: (error: OutpostError, write: PendingWrite) => void;
  fetch?: Fetch;
  WebSocket?: WebSocketConstructor;
  /** The clock (ms); tests move it. */
  now?: () => number;
  /** Refresh the access token this long before it expires (default 60 s; at most half the token's lifetime). */
  refreshMarginMs?: number;
  /** How often watched collections poll `/changes` when the server has no live socket (default 15 s). */
  pollIntervalMs?: number;
  /** Socket reconnect backoff (defaults 500 ms → 30 s) and heartbeat interval (default 25 s). */
  reconnect?: { minDelayMs?: number; maxDelayMs?: number; heartbeatMs?: number };
  /** Request timeout (default 30 s). */
  timeoutMs?: number;
  /** Uploads above this size go resumable (default 5 MiB); tus chunk size (default 5 MiB). */
  largeUploadBytes?: number;
  chunkSize?: number;
  /** App integrity: gives the proof for a challenge (docs/app-check.md); the SDK sends `Outpost-App-Check`. */
  appCheck?: AppCheckProvider;
}

export class OutpostClient<
  C extends CollectionMap = UntypedCollections,
  A extends AppRouteMap = UntypedAppRoutes,
  R extends ConfigValues = ConfigValues,
> {
  readonly auth: Auth;
  /** The app's own routes under `/v1/app/`, typed by the generated `AppRoutes`. */
  readonly app: AppRoutes<A>;
  /** Remote config: `get(key)`, `refresh()`, `watch(cb)`. */
  readonly config: RemoteConfig<R>;
  readonly links: Links;
  readonly files: Files;
  readonly rooms: Rooms;
  readonly teams: Teams;
  /** Resolves once the stored session and the signed-in user's queue of pending writes have been read. */
  readonly ready: Promise<void>;
  private readonly core: Core;
  private readonly sync: Sync;
  private readonly http: Http;
  private readonly openRooms = new Map<string, Room>();
  private readonly cols = new Map<string, Collection<C[string]["fields"], C[string]["create"], References>>();
  private active = true;
  private online = true;
  private device: (DeviceRegistration & { id?: string; userId?: string }) | null = null;
  private readonly deviceLoaded: Promise<void>;
  /** The user whose queues are loaded (undefined until the stored session was read). */
  private owner: string | null | undefined;

  constructor(o: ClientOptions<C>) {
    const now = o.now ?? Date.now;
    const fetchFn: Fetch = o.fetch ?? ((input, init) => fetch(input, init));
    this.http = new Http(o.url.replace(/\/+$/, ""), fetchFn, o.timeoutMs ?? 30_000);
    if (o.app) this.http.headers["outpost-client"] = `${o.app.platform}/${o.app.version}`;
    if (o.app?.installId) this.http.headers["outpost-install-id"] = o.app.installId;
    const storage = o.storage ?? memoryStorage();
    const prefix = o.storageKey ?? "outpost.";
    this.auth = new Auth({
      http: this.http,
      storage,
      key: `${prefix}session`,
      now,
      marginMs: o.refreshMarginMs ?? 60_000,
    });
    this.http.tokens = this.auth;
    if (o.appCheck) this.http.appCheck = new AppCheck(this.http, o.appCheck, now);
    const WS = o.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    const sockets: SocketEnv = {
      http: this.http,
      auth: this.auth,
      WebSocket: WS as WebSocketConstructor,
      now,
      minDelayMs: o.reconnect?.minDelayMs ?? 500,
      maxDelayMs: o.reconnect?.maxDelayMs ?? 30_000,
      heartbeatMs: o.reconnect?.heartbeatMs ?? 25_000,
      online: () => this.online && this.active,
    };
    this.core = { http: this.http, auth: this.auth, storage, prefix, now, sockets };
    this.sync = new Sync(this.core, {
      store: o.store ?? memoryStore(),
      pollIntervalMs: o.pollIntervalMs ?? 15_000,
      defaults: (o.defaults ?? {}) as { [k: string]: { [f: string]: unknown } | undefined },
      ...(o.onConflict && { onConflict: o.onConflict }),
      ...(o.onSyncError && { onSyncError: o.onSyncError }),
    });
    this.files = new Files(this.core, {
      largeUploadBytes: o.largeUploadBytes ?? 5 * 2 ** 20,
      chunkSize: o.chunkSize ?? 5 * 2 ** 20,
    });
    this.rooms = new Rooms(this.core);
    this.teams = new Teams(this.core);
    this.app = new AppRoutes<A>(this.http);
    this.config = new RemoteConfig<R>(this.core);
    this.links = new Links(this.core);
    this.deviceLoaded = readJson<typeof this.device>(storage, `${prefix}device`, null).then((d) => {
      this.device = d;
    });
    this.auth.afterSignIn = () => this.registerStoredDevice();
    // Sign-out: the push token first (while the session still works), then this user's queues.
    this.auth.beforeSignOut = async (unregister) => {
      await this.ready;
      if (unregister) await this.unregisterDevice({ forget: false }).catch(noop);
      await this.switchUser(null, true);
    };
    this.ready = this.auth.ready.then(() => {
      this.owner ??= this.auth.user?.id ?? null;
      return this.sync.setUser(this.owner);
    });
    this.auth.onAuthStateChange((event, session) => {
      const user = session?.user?.id ?? (session ? (this.owner ?? null) : null);
      if (this.owner !== undefined && user !== this.owner) void this.switchUser(user, false);
      if (event === "INITIAL_SESSION") void this.registerStoredDevice().catch(noop);
    });
  }

  /** A collection; with generated types, its records, filters and sorts are typed. */
  collection<K extends keyof C & string>(name: K): Collection<C[K]["fields"], C[K]["create"], RefsOf<C[K]>> {
    let col = this.cols.get(name);
    if (!col) {
      col = new Collection(this.core, this.sync, name);
      this.cols.set(name, col);
    }
    return col as unknown as Collection<C[K]["fields"], C[K]["create"], RefsOf<C[K]>>;
  }

  /** A chat room (one object per id); `connect()` opens its socket. */
  room(id: string): Room {
    let r = this.openRooms.get(id);
    if (!r) {
      r = new Room(this.core, id);
      this.openRooms.set(id, r);
    }
    return r;
  }

  /**
   * Everything a user queued belongs to that user. On a change of user, their pending promises
   * reject with `signed_out`, rooms stop (`stopped`), and their queued writes, chat outboxes and
   * resumable uploads are dropped (`drop`: an explicit sign-out) or kept in storage under their id
   * until they sign in again; the new user's own are loaded.
   */
  private async switchUser(user: string | null, drop: boolean): Promise<void> {
    const from = this.owner ?? null;
    if (user === from && !drop) return;
    this.owner = user;
    for (const r of this.openRooms.values()) r.switchUser(user, drop);
    const files = this.files.switchUser(from, user, drop).catch(noop);
    if (drop) await this.sync.discard();
    await this.sync.setUser(user);
    await files;
  }

  // --- app and network state -----------------------------------------------------------

  /**
   * Tell the SDK when the app moves between foreground and background: pass React Native's
   * AppState as is. `inactive` (iOS, briefly) and others change nothing.
   */
  setAppState(state: "active" | "background" | "inactive" | "unknown" | "extension"): void {
    if (state !== "active" && state !== "background") return;
    const active = state === "active";
    if (active === this.active) return;
    this.active = active;
    this.auth.setActive(active);
    this.apply();
  }

  /**
   * Tell the SDK when the device goes offline / online (e.g. from NetInfo): queued writes flush and sockets reconnect
   * at once.
   */
  setOnline(online: boolean): void {
    if (online === this.online) return;
    this.online = online;
    this.apply();
  }

  private apply(): void {
    const go = this.active && this.online;
    this.sync.setActive(this.active);
    this.sync.setOnline(this.online);
    for (const r of this.openRooms.values()) go ? r.resume() : r.pause();
  }

  /** Sends every queued write now; resolves when the queue is empty or the network stopped it. */
  flush(): Promise<void> {
    return this.sync.flush();
  }

  /** Writes waiting for the server, oldest first. */
  get pendingWrites(): readonly PendingWrite[] {
    return this.sync.queue;
  }

  // --- push ----------------------------------------------------------------------------

  /**
   * Registers this device's push token for the signed-in user, and remembers it: the SDK
   * registers it again on every sign-in and removes it on sign-out.
   */
  async registerDevice(d: DeviceRegistration): Promise<Device | null> {
    await this.deviceLoaded;
    this.device = { token: d.token, platform: d.platform, provider: d.provider };
    await writeJson(this.core.storage, `${this.core.prefix}device`, this.device);
    return this.registerStoredDevice();
  }

  /** Removes this device's push registration (and, unless `forget: false`, the remembered token). */
  async unregisterDevice(o: { forget?: boolean } = {}): Promise<void> {
    await this.deviceLoaded;
    const d = this.device;
    if (!d) return;
    const id = d.id;
    this.device = o.forget === false ? { token: d.token, platform: d.platform, provider: d.provider } : null;
    await writeJson(this.core.storage, `${this.core.prefix}device`, this.device ?? undefined);
    if (id && this.auth.session) await this.http.send(`/v1/devices/${enc(id)}`, { method: "DELETE" });
  }

  private async registerStoredDevice(): Promise<Device | null> {
    await this.deviceLoaded;
    const d = this.device;
    const user = this.auth.user?.id;
    if (!d || !user || (d.id && d.userId === user)) return null;
    const dev = await this.http.json<Device>("/v1/devices", {
      method: "POST",
      body: { token: d.token, platform: d.platform, provider: d.provider },
    });
    this.device = { ...d, id: dev.id, userId: user };
    await writeJson(this.core.storage, `${this.core.prefix}device`, this.device);
    return dev;
  }

  // --- misc ----------------------------------------------------------------------------

  /** Any route of the API, with the SDK's session, errors and bookmark handling. */
  request<T>(path: string, o?: RequestOptions): Promise<T> {
    return this.http.json<T>(path, o);
  }

  health(): Promise<{ status: string; version: string }> {
    return this.http.json("/v1/health", { auth: false });
  }

  get user(): User | null {
    return this.auth.user;
  }

  /** Stops every socket and timer (scripts and tests; an app simply keeps its client). */
  close(): void {
    this.sync.close();
    this.config.close();
    this.auth.setActive(false);
    for (const r of this.openRooms.values()) r.disconnect();
  }
}

/** `createClient<Collections, AppRoutes, AppConfig>({ url })` with the types `npm run client:types` writes. */
export function createClient<
  C extends CollectionMap = UntypedCollections,
  A extends AppRouteMap = UntypedAppRoutes,
  R extends ConfigValues = ConfigValues,
>(o: ClientOptions<C>): OutpostClient<C, A, R> {
  return new OutpostClient<C, A, R>(o);
}

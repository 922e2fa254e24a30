/**
 * Offline-first records: a queue of pending writes kept in storage (each with a device-made id, an
 * Idempotency-Key and If-Match from the version the app saw) flushed in order, one at a time,
 * whenever the network allows; a local store fed by the server's change feed (the live `subscribe`
 * socket where the server has it, else polling `/changes`); live queries over the two combined.
 *
 * Exactly once: a create carries its Idempotency-Key (the server replays a lost answer) and the
 * device-made id; an update/replace whose answer was lost comes back as 412, and the SDK then
 * finds its own change already on the server (version = If-Match + 1, same fields) instead of
 * reporting a conflict; a delete whose answer was lost comes back as 404, which is success.
 *
 * Team-scoped records: a write of one that comes back 404 while the user is no longer in its team
 * (asked of `/v1/teams/:id`) drops every queued write of that team (`removed_from_team`); a watch of
 * one team has its own cursor, and a socket closed 4403 (removed) or refused, or a 404 feed, stops it
 * and drops the team's records.
 */
import { type Core, enc } from "./core.js";
import { isRetryable, OutpostError, removedFromTeam, signedOut, toError } from "./errors.js";
import { Feed, feedKey } from "./feed.js";
import { readJson, writeJson } from "./storage.js";
import { type LocalStore, matches, type StoredRecord, sortRecords } from "./store.js";
import type { Tombstone } from "./types.js";
import { backoff, noop, same, serial } from "./util.js";

type Data = { [field: string]: unknown };

/** One write waiting for the server. */
export interface PendingWrite {
  /** Idempotency-Key, also the write's identity. */
  key: string;
  op: "create" | "update" | "replace" | "delete";
  collection: string;
  id: string;
  data?: Data;
  /** The version the app saw when it made the change (sent as If-Match). */
  ifMatch?: number;
  /** Made on top of an earlier pending write of the same record: If-Match comes from that write's result. */
  chained?: boolean;
  /** When the app made the change (the local view's updatedAt). */
  at: string;
  /** The record's team, for a team-scoped record the device knows. */
  teamId?: string;
}

/** A write the server refused with 412: someone changed the record since the app saw it. */
export interface Conflict {
  collection: string;
  id: string;
  op: PendingWrite["op"];
  /** The fields this write sends. */
  data: Data | undefined;
  /** The record on the server now. */
  server: StoredRecord;
  /** The record as the app shows it (the server's last known state plus pending writes). */
  local: StoredRecord | undefined;
}

/**
 * `server`: drop the app's pending changes of this record; `local`: write them over the server's; `merge`: write
 * these fields instead.
 */
export type Resolution = "server" | "local" | { merge: Data };

export interface SyncOptions {
  store: LocalStore;
  onConflict?: (c: Conflict) => Resolution | Promise<Resolution>;
  /** A queued write the server refused for good (after the call that made it had returned). */
  onSyncError?: (error: OutpostError, write: PendingWrite) => void;
  pollIntervalMs: number;
  defaults: { [collection: string]: Data | undefined };
}

export interface Snapshot<R> {
  items: R[];
  /** True for a record with changes not yet confirmed by the server. */
  hasPendingWrites(id: string): boolean;
  /** False until the feed caught up with the server once since `watch` began. */
  synced: boolean;
  /**
   * Why the feed stopped for good, else null. `removed_from_team` (403: its socket closed 4403; 404: the team
   * says so): the user left or was removed from the watched team, whose records were dropped on this device.
   */
  stopped: OutpostError | null;
}

interface Watcher {
  col: string;
  /** Follow this team only (a team-scoped collection). */
  teamId?: string | undefined;
  where?: Data | undefined;
  sort?: string | undefined;
  limit?: number | undefined;
  cb(s: Snapshot<StoredRecord>): void;
  last?: string;
  feed?: Feed;
}

type Waiter = { resolve(r: StoredRecord | null): void; reject(e: OutpostError): void };

const recordPath = (col: string, id?: string) =>
  `/v1/collections/${enc(col)}/records${id === undefined ? "" : `/${enc(id)}`}`;

export class Sync {
  queue: PendingWrite[] = [];
  online = true;
  active = true;
  /** Whether the server takes device-made ids on create (v1.1); undefined until a create tells. */
  clientIds: boolean | undefined;
  /** Whether the server has live `subscribe` sockets; undefined until probed. */
  live: boolean | undefined;
  private user: string | null = null;
  private loading: Promise<void> = Promise.resolve();
  private flushing: Promise<void> | null = null;
  private again = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly waiters = new Map<string, Waiter>();
  private readonly watchers = new Map<string, Set<Watcher>>();
  private readonly feeds = new Map<string, Feed>();
  private readonly pulls = new Map<string, Promise<void>>();
  private readonly dirty = new Set<string>();
  private readonly io = serial();
  /** Device-made id → server id, for servers that do not take device-made ids. */
  readonly aliases = new Map<string, string>();

  constructor(
    readonly c: Core,
    readonly o: SyncOptions,
  ) {}

  // --- who -----------------------------------------------------------------------------

  /** The signed-in user changed: their own queue and local data (another user's are dropped). */
  setUser(userId: string | null): Promise<void> {
    if (userId === this.user) return this.loading;
    this.user = userId;
    this.queue = [];
    // The previous user's writes stay theirs (kept under their key, or dropped by `discard`): whoever waited is told.
    const err = signedOut("write");
    for (const w of this.waiters.values()) w.reject(err);
    this.waiters.clear();
    for (const f of this.feeds.values()) f.stop();
    this.loading = (async () => {
      const ownerKey = `${this.c.prefix}storeOwner`;
      if (userId && (await this.c.storage.getItem(ownerKey)) !== userId) {
        await this.o.store.clear();
        await this.c.storage.setItem(ownerKey, userId);
      }
      if (!userId) await this.o.store.clear();
      if (userId) this.queue = await readJson<PendingWrite[]>(this.c.storage, this.queueKey(), []);
      for (const col of this.watchers.keys()) this.changed(col);
      if (userId) for (const f of this.feeds.values()) if (f.refs) void f.start();
    })();
    void this.loading.then(() => this.kick());
    return this.loading;
  }

  /** Explicit sign-out: this user's pending writes and local data are dropped. */
  async discard(): Promise<void> {
    if (this.user) await this.c.storage.removeItem(this.queueKey()).catch(noop);
    this.queue = [];
    await this.setUser(null);
  }

  // --- writes --------------------------------------------------------------------------

  /**
   * Queues a write, shows it locally, and tries to send it: resolves with the server's record when
   * that worked, with the local record when the network is down (the write stays queued), and
   * rejects when the server refused it for good (the local change is then undone).
   */
  async write(w: PendingWrite): Promise<StoredRecord | null> {
    await this.loading;
    if (!this.user) throw new OutpostError(401, "unauthorized", "Sign in before writing records.");
    w.id = this.aliases.get(w.id) ?? w.id;
    const teamId = w.op === "create" ? w.data?.teamId : (await this.local(w.collection, w.id))?.teamId;
    if (typeof teamId === "string") w.teamId = teamId;
    if (w.op !== "create") {
      if (this.queue.some((q) => q.collection === w.collection && q.id === w.id)) w.chained = true;
      else if (w.ifMatch === undefined) w.ifMatch = (await this.o.store.get(w.collection, w.id))?.version;
    }
    this.queue.push(w);
    await this.save();
    this.changed(w.collection);
    const outcome = new Promise<StoredRecord | null>((resolve, reject) => this.waiters.set(w.key, { resolve, reject }));
    outcome.catch(noop);
    await this.flush();
    if (!this.waiters.has(w.key)) return outcome;
    this.waiters.delete(w.key);
    return (await this.local(w.collection, w.id)) ?? null;
  }

  /** True while a write of this record waits for the server. */
  pending(col: string, id: string): boolean {
    const real = this.aliases.get(id) ?? id;
    return this.queue.some((q) => q.collection === col && q.id === real);
  }

  /** Sends queued writes in order until the queue is empty or the network stops it. */
  flush(): Promise<void> {
    if (this.flushing) {
      this.again = true;
      return this.flushing;
    }
    this.flushing = (async () => {
      await this.loading;
      let blocked = false;
      do {
        this.again = false;
        blocked = await this.pass();
      } while (this.again && !blocked);
    })().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  /** One pass over the queue; true when it stopped on a retryable failure. */
  private async pass(): Promise<boolean> {
    while (this.queue.length && this.online && this.user && this.signedInAs(this.user)) {
      const w = this.queue[0] as PendingWrite;
      let rec: StoredRecord | null;
      try {
        rec = await this.send(w, 0);
      } catch (e) {
        const err = toError(e);
        if (this.queue[0] !== w) continue;
        if (err.code === "removed_from_team" && w.teamId !== undefined) {
          await this.leftTeam(w.teamId, err);
          continue;
        }
        if (isRetryable(err) || err.status === 401 || err.code === "account_disabled") {
          clearTimeout(this.retryTimer);
          if (this.online && this.active && this.c.auth.session) {
            this.retryTimer = setTimeout(
              () => void this.flush(),
              err.retryAfter ? err.retryAfter * 1000 : backoff(this.attempt++, 1000, 60_000),
            );
          }
          return true;
        }
        await this.finish(w, undefined, err);
        continue;
      }
      this.attempt = 0;
      if (this.queue[0] === w) await this.finish(w, rec);
    }
    return false;
  }

  /** Sends one write; resolves with the record now on the server (null: deleted). */
  private async send(w: PendingWrite, round: number): Promise<StoredRecord | null> {
    const { http } = this.c;
    const headers: { [k: string]: string } =
      w.ifMatch === undefined || w.op === "create" ? {} : { "if-match": `"${w.ifMatch}"` };
    try {
      if (w.op === "create") {
        const withId = this.clientIds !== false;
        try {
          const rec = await http.json<StoredRecord>(recordPath(w.collection), {
            method: "POST",
            body: withId ? { id: w.id, ...w.data } : w.data,
            idempotencyKey: w.key,
          });
          if (withId) this.clientIds = true;
          return rec;
        } catch (e) {
          // A server before v1.1 refuses `id` on create: send without, and use the id it gives.
          if (
            withId &&
            this.clientIds === undefined &&
            e instanceof OutpostError &&
            e.code === "validation_failed" &&
            e.errors.some((x) => /^id\b/.test(x.path))
          ) {
            this.clientIds = false;
            return this.send(w, round);
          }
          throw e;
        }
      }
      if (w.op === "delete") {
        await http.send(recordPath(w.collection, w.id), { method: "DELETE", headers, idempotencyKey: w.key });
        return null;
      }
      return await http.json<StoredRecord>(recordPath(w.collection, w.id), {
        method: w.op === "update" ? "PATCH" : "PUT",
        body: w.data,
        headers,
        idempotencyKey: w.key,
      });
    } catch (e) {
      if (!(e instanceof OutpostError)) throw e;
      // Not in the record's team any more (removed, left, or the team deleted): nothing of it goes through.
      if (e.status === 404 && w.teamId !== undefined && !(await this.inTeam(w.teamId)))
        throw removedFromTeam(w.teamId, 404);
      // Gone: a delete is done; an update has nothing left to change.
      if (e.status === 404 && w.op !== "create") return null;
      if (e.status === 412 && round < 3) return this.conflict(w, round);
      throw e;
    }
  }

  /** Whether the user is still a member of a team (a 404 of a team's record may mean they are not). */
  async inTeam(teamId: string): Promise<boolean> {
    try {
      await this.c.http.json(`/v1/teams/${enc(teamId)}`);
      return true;
    } catch (e) {
      if (e instanceof OutpostError && (e.status === 404 || e.status === 403)) return false;
      throw e;
    }
  }

  /** The user is out of a team: every queued write of it is dropped and reported, its records leave the store. */
  private async leftTeam(teamId: string, err: OutpostError): Promise<void> {
    const gone = this.queue.filter((q) => q.teamId === teamId);
    for (const col of new Set(gone.map((q) => q.collection))) await this.dropTeam(col, teamId);
    for (const q of gone) if (this.queue.includes(q)) await this.finish(q, undefined, err);
  }

  /** Drops a team's records of a collection from the store, and its team cursor (a rejoin syncs from the start). */
  dropTeam(col: string, teamId: string): Promise<void> {
    return this.io(async () => {
      const ids = (await this.o.store.list(col)).filter((r) => r.teamId === teamId).map((r) => r.id);
      await this.o.store.write(col, [], ids);
      await this.o.store.setCursor(feedKey(col, teamId), undefined);
      this.changed(col);
    });
  }

  private async conflict(w: PendingWrite, round: number): Promise<StoredRecord | null> {
    let server: StoredRecord;
    try {
      server = await this.c.http.json<StoredRecord>(recordPath(w.collection, w.id));
    } catch (e) {
      if (e instanceof OutpostError && e.status === 404) return null;
      throw e;
    }
    // Our own change already landed (its answer was lost): not a conflict.
    if (
      w.op !== "delete" &&
      w.ifMatch !== undefined &&
      server.version === w.ifMatch + 1 &&
      Object.entries(w.data ?? {}).every(([k, v]) => same(server[k], v))
    ) {
      return server;
    }
    const r = this.o.onConflict
      ? await this.o.onConflict({
          collection: w.collection,
          id: w.id,
          op: w.op,
          data: w.data,
          server,
          local: await this.local(w.collection, w.id),
        })
      : "server";
    if (r === "server") {
      // Later pending changes of this record were made on top of this one: they go too.
      for (const q of this.queue.filter((q) => q !== w && q.collection === w.collection && q.id === w.id))
        await this.finish(q, server);
      return server;
    }
    w.ifMatch = server.version;
    if (typeof r === "object") w.data = r.merge;
    await this.save();
    return this.send(w, round + 1);
  }

  /**
   * A write is done (rec: the server's record, null: deleted) or refused (err): update the store, the queue, the
   * caller.
   */
  private async finish(w: PendingWrite, rec: StoredRecord | null | undefined, err?: OutpostError): Promise<void> {
    const col = w.collection;
    this.queue = this.queue.filter((q) => q !== w);
    if (rec === null) await this.o.store.write(col, [], [w.id]);
    else if (rec) {
      if (rec.id !== w.id) {
        this.aliases.set(w.id, rec.id);
        for (const q of this.queue) if (q.collection === col && q.id === w.id) q.id = rec.id;
      }
      const base = await this.o.store.get(col, rec.id);
      if (!base || base.version <= rec.version) await this.o.store.write(col, [rec], rec.id === w.id ? [] : [w.id]);
      const next = this.queue.find((q) => q.collection === col && q.id === rec.id);
      if (next?.chained) {
        next.chained = false;
        next.ifMatch = rec.version;
      }
    }
    const dropped = err ? this.queue.filter((q) => q.collection === col && q.id === w.id) : [];
    this.queue = this.queue.filter((q) => !dropped.includes(q));
    await this.save();
    this.changed(col);
    for (const q of [w, ...dropped]) {
      const waiter = this.waiters.get(q.key);
      this.waiters.delete(q.key);
      if (!err) waiter?.resolve(rec ?? null);
      else if (waiter) waiter.reject(err);
      else this.o.onSyncError?.(err, q);
    }
  }

  /** Tries a flush soon (after a write, on reconnect, on foreground). */
  kick(): void {
    if (this.queue.length && this.online && this.active) void this.flush().catch(noop);
  }

  // --- reads ---------------------------------------------------------------------------

  /** The local view of one record: the server's last known state with pending writes applied. */
  async local(col: string, id: string): Promise<StoredRecord | undefined> {
    await this.loading;
    const m = new Map<string, StoredRecord>();
    const base = await this.o.store.get(col, id);
    if (base) m.set(id, base);
    for (const w of this.queue) if (w.collection === col && w.id === id) this.apply(m, w);
    return m.get(id);
  }

  /** The local view of a collection. */
  async view(col: string): Promise<Map<string, StoredRecord>> {
    await this.loading;
    const m = new Map((await this.o.store.list(col)).map((r) => [r.id, r]));
    for (const w of this.queue) if (w.collection === col) this.apply(m, w);
    return m;
  }

  private apply(m: Map<string, StoredRecord>, w: PendingWrite): void {
    const cur = m.get(w.id);
    if (w.op === "delete") m.delete(w.id);
    else if (w.op === "create" || w.op === "replace" || cur) {
      const sys = {
        id: w.id,
        ...(cur?.teamId !== undefined && { teamId: cur.teamId }),
        ownerId: cur?.ownerId ?? this.user,
        createdAt: cur?.createdAt ?? w.at,
        updatedAt: w.at,
        version: cur?.version ?? 0,
      };
      const fields = w.op === "update" ? cur : { ...this.o.defaults[w.collection], ...(w.op === "create" ? cur : {}) };
      m.set(w.id, { ...fields, ...w.data, ...sys });
    }
  }

  /** Server records the app read directly (get): kept when newer than the local copy. */
  async remember(col: string, rec: StoredRecord): Promise<void> {
    const base = await this.o.store.get(col, rec.id);
    if (!base || base.version < rec.version) {
      await this.o.store.write(col, [rec], []);
      this.changed(col);
    }
  }

  async forget(col: string, id: string): Promise<void> {
    await this.o.store.write(col, [], [id]);
    this.changed(col);
  }

  /**
   * Catches up with the change feed now (every page): the collection's, or one team's (its own cursor). A team
   * the user is no longer in rejects with `removed_from_team`, its records dropped.
   */
  pull(col: string, teamId?: string): Promise<void> {
    const key = feedKey(col, teamId);
    let p = this.pulls.get(key);
    if (!p) {
      p = this.doPull(col, teamId).finally(() => this.pulls.delete(key));
      this.pulls.set(key, p);
    }
    return p;
  }

  private async doPull(col: string, teamId: string | undefined): Promise<void> {
    await this.loading;
    const key = feedKey(col, teamId);
    let cursor = await this.o.store.getCursor(key);
    for (let resets = 0; ; ) {
      let page: { items: (StoredRecord | Tombstone)[]; nextCursor: string; hasMore: boolean };
      try {
        page = await this.c.http.json(`/v1/collections/${enc(col)}/changes`, {
          query: { since: cursor, limit: 200, teamId },
        });
      } catch (e) {
        if (e instanceof OutpostError && e.status === 410 && resets++ === 0) {
          await this.resync(col, teamId);
          cursor = undefined;
          continue;
        }
        // One team's feed is 404 outside the team.
        if (teamId !== undefined && e instanceof OutpostError && e.status === 404) {
          await this.dropTeam(col, teamId);
          throw removedFromTeam(teamId, 404);
        }
        throw e;
      }
      await this.ingest(col, page.items, page.nextCursor, key);
      cursor = page.nextCursor;
      if (!page.hasMore) return;
    }
  }

  /** The cursor is past the server's retention: start over from nothing (the collection, or one team's part). */
  async resync(col: string, teamId?: string): Promise<void> {
    if (teamId !== undefined) return this.dropTeam(col, teamId);
    await this.o.store.clear(col);
    // The team cursors of this collection point past records that just left the store.
    for (const f of this.feeds.values()) if (f.col === col && f.teamId !== undefined) await f.forget();
    this.changed(col);
  }

  /** Applies changes from the feed (newer versions only) and moves the cursor (of `key`: the feed's). */
  ingest(col: string, items: (StoredRecord | Tombstone)[], cursor: string | undefined, key = col): Promise<void> {
    return this.io(async () => {
      const put: StoredRecord[] = [];
      const remove: string[] = [];
      for (const it of items) {
        const base = await this.o.store.get(col, it.id);
        if (base && base.version > it.version) continue;
        if ((it as Tombstone).deleted === true) remove.push(it.id);
        else put.push(it as StoredRecord);
      }
      await this.o.store.write(col, put, remove);
      if (cursor !== undefined) await this.o.store.setCursor(key, cursor);
      if (put.length || remove.length) this.changed(col);
    });
  }

  // --- live queries --------------------------------------------------------------------

  watch(w: Watcher): () => void {
    let set = this.watchers.get(w.col);
    if (!set) {
      set = new Set();
      this.watchers.set(w.col, set);
    }
    const key = feedKey(w.col, w.teamId);
    let feed = this.feeds.get(key);
    if (!feed) {
      feed = new Feed(this, w.col, w.teamId);
      this.feeds.set(key, feed);
    }
    w.feed = feed;
    set.add(w);
    this.changed(w.col);
    if (feed.refs++ === 0) void feed.start();
    return () => {
      if (!set.delete(w)) return;
      if (--feed.refs === 0) feed.stop();
    };
  }

  /** Recomputes the live queries of a collection (once per tick however many changes). */
  changed(col: string): void {
    if (this.dirty.has(col) || !this.watchers.get(col)?.size) return;
    this.dirty.add(col);
    void Promise.resolve()
      .then(async () => {
        this.dirty.delete(col);
        const view = await this.view(col);
        const pending = new Set(this.queue.filter((q) => q.collection === col).map((q) => q.id));
        for (const w of this.watchers.get(col) ?? []) {
          const synced = w.feed?.synced ?? false;
          const stopped = w.feed?.stopped ?? null;
          const where = w.teamId === undefined ? w.where : { ...w.where, teamId: w.teamId };
          const items = sortRecords(
            [...view.values()].filter((r) => matches(r, where)),
            w.sort,
          ).slice(0, w.limit);
          const ids = items.filter((r) => pending.has(r.id)).map((r) => r.id);
          const sig = JSON.stringify([items, ids, synced, stopped?.code]);
          if (sig === w.last) continue;
          w.last = sig;
          w.cb({ items, hasPendingWrites: (id) => pending.has(this.aliases.get(id) ?? id), synced, stopped });
        }
      })
      .catch((e: unknown) => console.error("outpost: live query failed", e));
  }

  // --- app state -----------------------------------------------------------------------

  setActive(active: boolean): void {
    this.active = active;
    this.state();
  }
  setOnline(online: boolean): void {
    this.online = online;
    this.state();
  }
  private state(): void {
    const go = this.active && this.online;
    for (const f of this.feeds.values()) if (f.refs) go ? f.resume() : f.pause();
    if (go) {
      this.attempt = 0;
      this.kick();
    } else clearTimeout(this.retryTimer);
  }

  close(): void {
    clearTimeout(this.retryTimer);
    for (const f of this.feeds.values()) f.stop();
  }

  /** The session is this user's (a write never goes out under another user's token). */
  private signedInAs(user: string): boolean {
    const s = this.c.auth.session;
    return s !== null && (s.user === null || s.user.id === user);
  }

  private queueKey(): string {
    return `${this.c.prefix}queue.${this.user}`;
  }

  private save(): Promise<void> {
    const key = this.queueKey();
    const q = this.queue.length ? [...this.queue] : undefined;
    return this.io(() => writeJson(this.c.storage, key, q));
  }
}

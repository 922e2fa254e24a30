/** `client.collection(name)`: typed records, written offline-first, read from the server or the local store. */
import { type Core, enc } from "./core.js";
import { OutpostError } from "./errors.js";
import { type Pages, pages } from "./pages.js";
import { matches, type StoredRecord, sortRecords } from "./store.js";
import type { Snapshot, Sync } from "./sync.js";
import type { Expanded, Fields, Page, Query, RecordOf, References, WatchQuery, Writable } from "./types.js";
import { uuid } from "./util.js";

export interface WriteOptions {
  /** Override If-Match (default: the version of the record in the local store). */
  ifMatch?: number;
}

/** What `list` takes: a query, a page cursor, and the server-side extras. */
export type ListQuery<F> = Query<F> & { cursor?: string; count?: boolean; search?: string };

export class Collection<F extends Fields, C extends Fields = Partial<F>, R extends References = References> {
  constructor(
    private readonly c: Core,
    private readonly s: Sync,
    readonly name: string,
  ) {}

  /**
   * Creates a record with an id made on this device (pass `id` to choose it). Shown locally at
   * once; resolves with the server's record, or with the local one while offline (it is queued).
   */
  async create(data: C & { id?: string }): Promise<RecordOf<F>> {
    const { id, ...fields } = data as C & { id?: string };
    const at = new Date(this.c.now()).toISOString();
    return this.write({ op: "create", id: id ?? uuid(this.c.now()), data: fields, at });
  }

  /** Changes some fields (If-Match: the version the app has). */
  update(id: string, patch: Partial<Writable<F>>, o: WriteOptions = {}): Promise<RecordOf<F>> {
    return this.write({ op: "update", id, data: patch, ...o });
  }

  /** Replaces the whole record (omitted fields take their defaults). */
  replace(id: string, data: Writable<C>, o: WriteOptions = {}): Promise<RecordOf<F>> {
    return this.write({ op: "replace", id, data, ...o });
  }

  async delete(id: string, o: WriteOptions = {}): Promise<void> {
    await this.s.write({ key: uuid(), collection: this.name, op: "delete", id, at: this.iso(), ...o });
  }

  private async write(w: {
    op: "create" | "update" | "replace";
    id: string;
    data: Fields;
    ifMatch?: number;
    at?: string;
  }): Promise<RecordOf<F>> {
    const rec = await this.s.write({ key: uuid(), collection: this.name, at: this.iso(), ...w });
    if (!rec) throw new OutpostError(404, "not_found", `No ${this.name} record ${w.id} (deleted on the server).`);
    return rec as RecordOf<F>;
  }

  /**
   * One record from the server (cheap when unchanged: If-None-Match), kept in the local store.
   * Offline, the local copy; pending changes are applied either way.
   */
  async get(id: string): Promise<RecordOf<F>> {
    const real = this.s.aliases.get(id) ?? id;
    const base = await this.s.o.store.get(this.name, real);
    try {
      const res = await this.c.http.send(`/v1/collections/${enc(this.name)}/records/${enc(real)}`, {
        headers: base ? { "if-none-match": `"${base.version}"` } : {},
      });
      if (res.status !== 304) await this.s.remember(this.name, (await res.json()) as StoredRecord);
    } catch (e) {
      if (e instanceof OutpostError && e.status === 404 && !this.s.pending(this.name, real))
        await this.s.forget(this.name, real);
      if (!(e instanceof OutpostError) || e.status !== 0) throw e;
    }
    const rec = await this.s.local(this.name, real);
    if (!rec) throw new OutpostError(404, "not_found", `No ${this.name} record ${id}.`);
    return rec as RecordOf<F>;
  }

  /**
   * The server's records matching `where` (online): `await` → the first page, `for await` → every page, `.all()`.
   * `count`: each page carries `total`; `expand`: reference fields whose records each item carries under `expand`
   * (typed from the generated references; null when missing or not readable); `search`: full-text over the
   * searchable fields, best match first unless `sort` is given.
   */
  list(q?: ListQuery<F>): Pages<RecordOf<F>>;
  list<K extends keyof R & string>(q: ListQuery<F> & { expand: K[] }): Pages<Expanded<F, R, K>>;
  list(q: ListQuery<F> & { expand?: string[] } = {}): Pages<RecordOf<F>> {
    const path = `/v1/collections/${enc(this.name)}/records`;
    const where = q.where && JSON.stringify(q.where);
    const count = q.count ? "true" : undefined;
    const expand = q.expand?.length ? q.expand.join(",") : undefined;
    return pages(
      (cursor) =>
        this.c.http.json<Page<RecordOf<F>>>(path, {
          query: { where, sort: q.sort, limit: q.limit, cursor, count, expand, search: q.search },
        }),
      q.cursor,
    );
  }

  /** One record from the server with the records its reference fields `expand` name (online; not cached). */
  async expanded<K extends keyof R & string>(id: string, expand: K[]): Promise<Expanded<F, R, K>> {
    const real = this.s.aliases.get(id) ?? id;
    return this.c.http.json<Expanded<F, R, K>>(`/v1/collections/${enc(this.name)}/records/${enc(real)}`, {
      query: { expand: expand.join(",") },
    });
  }

  /** Records of the local store (pending changes applied) matching the query, now. */
  async query(q: Query<F> = {}): Promise<RecordOf<F>[]> {
    const items = [...(await this.s.view(this.name)).values()].filter((r) => matches(r, q.where as Fields | undefined));
    return sortRecords(items, q.sort).slice(0, q.limit) as RecordOf<F>[];
  }

  /**
   * A live query over the local store, kept in sync with the server (live socket or polling)
   * while watched. `cb` runs now and after every change. Returns the function that stops it.
   * Without a query: the whole collection. With `teamId` (team-scoped collections): that team's records,
   * synced on their own cursor; `snapshot.stopped` says when the user is no longer in the team.
   */
  watch(cb: (snapshot: Snapshot<RecordOf<F>>) => void): () => void;
  watch(q: WatchQuery<F>, cb: (snapshot: Snapshot<RecordOf<F>>) => void): () => void;
  watch(
    qOrCb: WatchQuery<F> | ((snapshot: Snapshot<RecordOf<F>>) => void),
    maybeCb?: (snapshot: Snapshot<RecordOf<F>>) => void,
  ): () => void {
    const q = typeof qOrCb === "function" ? {} : qOrCb;
    const cb = typeof qOrCb === "function" ? qOrCb : maybeCb;
    if (!cb) throw new TypeError("watch needs a callback");
    return this.s.watch({
      col: this.name,
      teamId: q.teamId,
      where: q.where as Fields | undefined,
      sort: q.sort,
      limit: q.limit,
      cb: cb as (s: Snapshot<StoredRecord>) => void,
    });
  }

  /** Catches up with the server's change feed now (with `teamId`: that team's feed, on its own cursor). */
  sync(o: { teamId?: string } = {}): Promise<void> {
    return this.s.pull(this.name, o.teamId);
  }

  /** True while a change of this record waits for the server. */
  hasPendingWrites(id: string): boolean {
    return this.s.pending(this.name, id);
  }

  private iso(): string {
    return new Date(this.c.now()).toISOString();
  }
}

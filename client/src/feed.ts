/** The live source of a watched collection (or of one team's part): the `subscribe` socket, or polling `/changes`. */
import { type Core, enc } from "./core.js";
import { OutpostError, removedFromTeam } from "./errors.js";
import { LiveSocket } from "./socket.js";
import type { LocalStore, StoredRecord } from "./store.js";
import type { Tombstone } from "./types.js";
import { noop } from "./util.js";

/** The key of a feed and of its cursor in the store: the collection, or the collection and one team. */
export const feedKey = (col: string, teamId?: string) => (teamId === undefined ? col : `${col}@${teamId}`);

/** What a feed needs of the sync engine that owns it (the engine's own methods, named here so the two files do not import each other). */
export interface FeedHost {
  readonly c: Core;
  readonly o: { readonly store: LocalStore; readonly pollIntervalMs: number };
  /** Whether the server has live `subscribe` sockets; undefined until probed. */
  live: boolean | undefined;
  pull(col: string, teamId?: string): Promise<void>;
  resync(col: string, teamId?: string): Promise<void>;
  dropTeam(col: string, teamId: string): Promise<void>;
  inTeam(teamId: string): Promise<boolean>;
  ingest(col: string, items: (StoredRecord | Tombstone)[], cursor: string | undefined, key?: string): Promise<void>;
  changed(col: string): void;
}

/** One feed: shared by every watch of the same collection (and team). */
export class Feed {
  refs = 0;
  synced = false;
  stopped: OutpostError | null = null;
  private sock: LiveSocket | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private cursor: string | undefined;
  private on = false;
  private paused = false;
  private readonly key: string;

  constructor(
    private readonly s: FeedHost,
    readonly col: string,
    readonly teamId?: string,
  ) {
    this.key = feedKey(col, teamId);
  }

  async start(): Promise<void> {
    this.on = true;
    this.synced = false;
    this.stopped = null;
    const { s } = this;
    if (s.live === undefined) {
      try {
        // A plain GET: a server with live sockets refuses it as "not an upgrade"; one without says 404.
        await s.c.http.send(`/v1/collections/${enc(this.col)}/subscribe`);
        s.live = true;
      } catch (e) {
        if (e instanceof OutpostError && e.status !== 0 && e.status < 500) s.live = e.status !== 404;
      }
    }
    if (!this.on) return;
    if (s.live) {
      this.cursor = await s.o.store.getCursor(this.key);
      this.sock ??= new LiveSocket(s.c.sockets, {
        path: () => {
          const q = [this.teamId && `teamId=${enc(this.teamId)}`, this.cursor && `since=${enc(this.cursor)}`];
          const query = q.filter(Boolean).join("&");
          return `/v1/collections/${enc(this.col)}/subscribe${query ? `?${query}` : ""}`;
        },
        onFrame: (f) => {
          if (f.type === "ready") {
            this.cursor = (f.cursor as string | undefined) ?? this.cursor;
            this.sock?.healthy();
            void s.ingest(this.col, [], this.cursor, this.key).then(() => this.caughtUp());
          } else if (f.type === "change" && f.item) {
            this.cursor = f.cursor as string;
            void s.ingest(this.col, [f.item as StoredRecord], this.cursor, this.key);
          } else if (f.type === "error" && f.code === "resync_required") this.reset();
        },
        onClose: (code) => {
          if (code === 4410) this.reset();
          return false;
        },
        // Sockets keep failing to open: is the route still there? (Not an upgrade → 400: yes; 404: no.) Is the
        // user still in the team? (A team's socket is refused 404 to anyone else.)
        probe: async () => {
          if (this.teamId !== undefined && !(await s.inTeam(this.teamId))) throw removedFromTeam(this.teamId, 404);
          await s.c.http.send(`/v1/collections/${enc(this.col)}/subscribe`).then(noop, (e: unknown) => {
            if (e instanceof OutpostError && e.status === 404) throw e;
          });
        },
        onHalt: (e) => {
          // Closed 4403 on one team's feed, or refused: the user is out of that team.
          if (this.teamId !== undefined && (e.status === 403 || e.code === "removed_from_team"))
            return void this.removed(this.teamId, e.status);
          // The server refused the socket for good: poll instead (a team's 404 tells nothing of other feeds).
          if (e.status === 404 && this.teamId === undefined) s.live = false;
          this.sock = null;
          if (this.on) this.poll();
        },
      });
      if (!this.paused) this.sock.start();
    } else if (!this.paused) this.poll();
  }

  private reset(): void {
    this.cursor = undefined;
    void this.s.resync(this.col, this.teamId);
  }

  /** The collection's copy was dropped: this team's feed starts over too. */
  async forget(): Promise<void> {
    this.cursor = undefined;
    await this.s.o.store.setCursor(this.key, undefined);
  }

  /** Out of the watched team: stop for good, drop its records, tell the watchers. */
  private removed(teamId: string, status: number): void {
    this.stop();
    this.sock = null;
    this.stopped = removedFromTeam(teamId, status);
    void this.s.dropTeam(this.col, teamId);
  }

  private caughtUp(): void {
    if (this.synced) return;
    this.synced = true;
    this.s.changed(this.col);
  }

  private poll(): void {
    clearTimeout(this.timer);
    if (!this.on || this.paused) return;
    void this.s
      .pull(this.col, this.teamId)
      .then(
        () => this.caughtUp(),
        (e: unknown) => {
          if (e instanceof OutpostError && e.code === "removed_from_team" && this.teamId !== undefined)
            this.removed(this.teamId, e.status);
        },
      )
      .finally(() => {
        if (!this.on || this.paused || this.sock) return;
        this.timer = setTimeout(() => this.poll(), this.s.o.pollIntervalMs);
      });
  }

  stop(): void {
    this.on = false;
    clearTimeout(this.timer);
    this.sock?.stop();
  }
  pause(): void {
    this.paused = true;
    clearTimeout(this.timer);
    this.sock?.pause();
  }
  resume(): void {
    this.paused = false;
    if (!this.on) return;
    if (this.sock) this.sock.resume();
    else this.poll();
  }
}

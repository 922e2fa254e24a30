/**
 * The room's D1 mirror: coalesced flushes of what D1 needs from the room's log (last message, read positions)
 * and the push jobs of new messages. See docs/architecture.md#the-room-mirror.
 */
import { limits } from "../../config";
import { primaryDb } from "../../db";
import { type SocketAttachment, SocketObject } from "../../lib/sockets";
import type { ChatMessageJob } from "./jobs";
import type { ServerFrame } from "./protocol";
import { LOG_SQL, RoomLog } from "./room-log";
import { jobBatches, pushJob, queueJobs } from "./room-push";
import { type MirrorResult, mirrorFlush } from "./service";

/** How the room mirrors to D1 (from `limits`; tests change it on an instance). */
interface MirrorPolicy {
  /** A flush starts at most this often (ms, on the `now()` clock). */
  everyMs: number;
  /** ...or at once when this many messages are waiting for one. */
  maxPending: number;
  /** Push jobs per `sendBatch` (Queues take up to 100 messages and 256 KB per batch). */
  jobsPerBatch: number;
}

/**
 * What a flush still owes lives in the log's SQLite: the messages above the log's watermark
 * (`mirroredSeq`: their push jobs are not queued yet, and their senders' read positions not written),
 * `unmirrored_deletes`, and `reads.mirrored` (the read position D1 has).
 */
export abstract class RoomMirror<A extends SocketAttachment> extends SocketObject<A, ServerFrame> {
  protected readonly log = new RoomLog(this.ctx.storage.sql);
  protected mirrorPolicy: MirrorPolicy = {
    everyMs: limits.chatMirrorFlushMs,
    maxPending: limits.chatMirrorFlushMax,
    jobsPerBatch: 100,
  };
  /** Messages stored since the last flush started (in memory: only paces the next flush). */
  protected unflushed = 0;
  /** The alarm as last set or seen (ms); null = none; undefined = not known since this instance started. */
  protected alarmAt: number | null | undefined = undefined;
  /** When the last flush started (`now()` clock). In memory: after a restart the first flush runs at once. */
  private lastFlushAt = Number.NEGATIVE_INFINITY;
  /** The flush running now; another one is owed after it when `flushAgain` is set. */
  private flushing: Promise<void> | null = null;
  private flushAgain: "paced" | "now" | null = null;
  private flushTimer: unknown = null;
  /** Flushes started and finished, counted, and the REST callers waiting for the flush that covers their write. */
  private flushesStarted = 0;
  private flushesDone = 0;
  private flushWaiters: { flush: number; resolve: () => void }[] = [];

  /** Users with an open socket here (they get no push). */
  protected abstract onlineUsers(): string[];

  /** The clock for the flush pace and rate limits (a method so tests can fix it). */
  protected now(): number {
    return Date.now();
  }

  /**
   * Called after a write that D1 must get: makes sure an alarm is due soon (so an eviction before
   * the flush only delays it), then starts a flush now when the last one started at least
   * `everyMs` ago (or enough messages wait), else when that time comes. A caller that waits for
   * the flush (REST) does not wait for the pace: its flush starts at once, or right after the
   * one running (group commit). Returns the number of the flush that will cover the write (the
   * next one to start).
   */
  protected requestFlush(waiting = false): number {
    void this.ensureAlarmBy(Date.now() + limits.chatMirrorRetrySec * 1000).catch((e) =>
      console.error("chat: setting the flush alarm failed:", (e as Error).message),
    );
    const covering = this.flushesStarted + 1;
    if (this.flushing) {
      if (waiting || this.flushAgain === null) this.flushAgain = waiting ? "now" : "paced";
      return covering;
    }
    const wait = this.lastFlushAt + this.mirrorPolicy.everyMs - this.now();
    if (waiting || wait <= 0 || this.unflushed >= this.mirrorPolicy.maxPending) {
      this.startFlush();
    } else if (this.flushTimer === null) {
      this.flushTimer = this.later(() => {
        this.flushTimer = null;
        if (!this.flushing) this.startFlush();
        else this.flushAgain ??= "paced";
      }, wait);
    }
    return covering;
  }

  /** Runs `fn` after `ms` (a method so tests can hold the flush timer and fire it on their own clock). */
  protected later(fn: () => void, ms: number): unknown {
    return setTimeout(fn, ms);
  }

  protected cancelLater(timer: unknown): void {
    clearTimeout(timer as ReturnType<typeof setTimeout>);
  }

  /** Waits until flush number `flush` has run (successfully or not: a failed one is retried by the alarm). */
  protected mirrored(flush: number): Promise<void> {
    if (this.flushesDone >= flush) return Promise.resolve();
    return new Promise((resolve) => this.flushWaiters.push({ flush, resolve }));
  }

  /** Flushes whatever is owed now, ignoring the pace (the alarm). */
  protected async flushNow(): Promise<void> {
    if (this.flushing) await this.flushing;
    if (!this.hasPending()) return;
    this.startFlush();
    await this.flushing;
  }

  /** Whether a flush owes D1 anything: messages (with their push jobs), deletions, read positions. */
  protected hasPending(): boolean {
    return (
      this.ctx.storage.sql
        .exec<{ p: number }>(
          `SELECT ${LOG_SQL.anyUnflushed} OR EXISTS (SELECT 1 FROM unmirrored_deletes)` +
            " OR EXISTS (SELECT 1 FROM reads WHERE seq > mirrored) AS p",
          this.log.mirroredSeq(),
        )
        .one().p === 1
    );
  }

  /** Makes sure the alarm fires at `at` (ms) or earlier. */
  protected async ensureAlarmBy(at: number): Promise<void> {
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (this.alarmAt !== null && this.alarmAt <= at) return;
    this.alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  /** Sends push jobs to the JOBS queue in one call (a method so tests can observe it). */
  protected async enqueueJobs(jobs: ChatMessageJob[]): Promise<void> {
    await queueJobs(this.env.JOBS, jobs);
  }

  /** Starts a flush (the caller checked none is running). */
  private startFlush(): void {
    if (this.flushTimer !== null) {
      this.cancelLater(this.flushTimer);
      this.flushTimer = null;
    }
    const number = ++this.flushesStarted;
    this.lastFlushAt = this.now();
    this.unflushed = 0;
    this.flushing = this.flush()
      .catch((e) => console.error("chat: flush failed:", (e as Error).message))
      .finally(() => {
        this.flushing = null;
        this.flushesDone = number;
        const done = this.flushWaiters.filter((w) => w.flush <= number);
        this.flushWaiters = this.flushWaiters.filter((w) => w.flush > number);
        for (const w of done) w.resolve();
        const again = this.flushAgain;
        this.flushAgain = null;
        if (again && this.hasPending()) this.requestFlush(again === "now");
      });
  }

  /**
   * One flush: what is owed is read from SQLite in one synchronous step (after writing the read
   * positions its messages' senders imply), written to D1 in one round trip (`mirrorFlush`), then the
   * push jobs of its new messages are queued with `sendBatch` in seq order, the watermark moving past
   * each batch as soon as it is queued (and past messages that need no job). A failure leaves the
   * rest owed, for the next flush or the alarm.
   */
  private async flush(): Promise<void> {
    const sql = this.ctx.storage.sql;
    const seqsOf = (query: string, ...bindings: number[]) =>
      sql
        .exec<{ seq: number }>(query, ...bindings)
        .toArray()
        .map((r) => r.seq);
    const from = this.log.mirroredSeq();
    this.log.settleSenderReads();
    const messages = this.log.unflushed();
    const upTo = messages.at(-1)?.seq ?? from;
    const deletes = seqsOf("SELECT seq FROM unmirrored_deletes");
    const reads = new Map(
      sql
        .exec<{ user_id: string; seq: number }>("SELECT user_id, seq FROM reads WHERE seq > mirrored")
        .toArray()
        .map((r) => [r.user_id, r.seq]),
    );
    if (messages.length === 0 && deletes.length === 0 && reads.size === 0) return;
    // The log as it is now: a message deleted since it was stored is mirrored as its tombstone and not pushed.
    const last =
      messages.length > 0 || deletes.length > 0
        ? (this.log.messages("SELECT * FROM messages ORDER BY seq DESC LIMIT 1")[0] ?? null)
        : null;
    const toPush = messages.filter((m) => !m.deleted);
    let mirror: MirrorResult | null;
    try {
      mirror = await mirrorFlush(primaryDb(this.env.DB), {
        roomId: this.log.roomId(),
        last,
        reads,
        senders: [...new Set(toPush.map((m) => m.senderId))],
      });
    } catch (e) {
      console.error(`chat: mirroring to D1 failed (${messages.length} messages), will retry:`, (e as Error).message);
      await this.ensureAlarmBy(Date.now() + limits.chatMirrorRetrySec * 1000);
      return;
    }
    // D1 has it: these reads and deletions are done; so is every message that needs no push.
    for (const [userId, seq] of reads)
      sql.exec("UPDATE reads SET mirrored = max(mirrored, ?) WHERE user_id = ?", seq, userId);
    for (const seq of deletes) sql.exec("DELETE FROM unmirrored_deletes WHERE seq = ?", seq);
    // Members with a socket here got the message; one deleted while D1 answered is not pushed.
    const online = new Set(this.onlineUsers());
    const deletedMeanwhile = new Set(
      seqsOf("SELECT seq FROM messages WHERE deleted = 1 AND seq > ? AND seq <= ?", from, upTo),
    );
    const jobs = mirror
      ? toPush
          .filter((m) => !deletedMeanwhile.has(m.seq))
          .map((m) => pushJob(m, mirror, online))
          .filter((j) => j.recipients.length > 0)
      : [];
    const batches = jobBatches(jobs, this.mirrorPolicy.jobsPerBatch);
    // Done once batches before `k` are queued: every message before batch k's first job (all up to
    // `upTo` when k is past the last batch). Messages before the first job need none.
    const doneBefore = (k: number) => (batches[k]?.[0]?.seq ?? upTo + 1) - 1;
    this.log.markMirrored(doneBefore(0));
    for (const [i, batch] of batches.entries()) {
      try {
        await this.enqueueJobs(batch);
      } catch (e) {
        console.error(`chat: queueing ${batch.length} push jobs failed, will retry:`, (e as Error).message);
        await this.ensureAlarmBy(Date.now() + limits.chatMirrorRetrySec * 1000);
        return;
      }
      // Right after the send, before any other await: a retry never queues these again.
      this.log.markMirrored(doneBefore(i + 1));
    }
  }
}

/**
 * A room's log in its Durable Object's SQLite: messages (gapless `seq`, dedupe by sender and clientId,
 * tombstones), read positions and the room id. Synchronous: no other event interleaves with a call.
 */
import { newId, nowIso } from "../../lib/ids";
import type { Message, SendInput } from "./protocol";

/** A page of history: after `after` (oldest first), or the newest before `before`. */
export interface HistoryQuery {
  after?: number | undefined;
  before?: number | undefined;
  limit: number;
}

interface MessageRow extends Record<string, SqlStorageValue> {
  seq: number;
  id: string;
  sender_id: string;
  client_id: string;
  text: string | null;
  file_id: string | null;
  created_at: string;
  /** 1 for a tombstone (text and file_id are then null). */
  deleted: number;
}

const UPSERT_READ =
  "INSERT INTO reads (user_id, seq) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET seq = max(seq, excluded.seq)";

/**
 * The statements on the messages above the mirror's watermark (exported for the query-plan test). The
 * `+sender_id`s keep the planner on that seq range rather than the (sender_id, client_id) index, which
 * holds every message of the room: a user's read position (`?1` the user, `?2` the watermark), and the
 * positions sending implies, settled by a flush (`?` the watermark).
 */
export const LOG_SQL = {
  readOf:
    "SELECT max(coalesce((SELECT seq FROM reads WHERE user_id = ?1), 0), " +
    "coalesce((SELECT max(seq) FROM messages WHERE seq > ?2 AND +sender_id = ?1), 0)) AS s",
  settleSenderReads:
    "INSERT INTO reads (user_id, seq) SELECT sender_id, max(seq) FROM messages WHERE seq > ? GROUP BY +sender_id " +
    "ON CONFLICT (user_id) DO UPDATE SET seq = max(seq, excluded.seq)",
  unflushed: "SELECT * FROM messages WHERE seq > ? ORDER BY seq",
  anyUnflushed: "EXISTS (SELECT 1 FROM messages WHERE seq > ?)",
} as const;

export class RoomLog {
  /** The room id, read once from `meta` (it never changes). */
  private boundRoomId: string | null = null;
  /** The last message's seq, read once; only `store` makes new ones (a tombstone keeps its seq). */
  private last: number | null = null;
  /** `meta.mirrored_seq`, as last read or written (see `readMirrored`). */
  private mirrored: number;

  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS messages (
      seq INTEGER PRIMARY KEY, id TEXT NOT NULL, sender_id TEXT NOT NULL, client_id TEXT NOT NULL, text TEXT,
      file_id TEXT, created_at TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, UNIQUE (sender_id, client_id))`);
    // Rooms created before tombstones existed get the column (a cheap check: column names of an empty result).
    if (!sql.exec("SELECT * FROM messages LIMIT 0").columnNames.includes("deleted")) {
      sql.exec("ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0");
    }
    sql.exec(
      "CREATE TABLE IF NOT EXISTS reads (user_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, " +
        "mirrored INTEGER NOT NULL DEFAULT 0)",
    );
    // `mirrored`: the read position D1 has. Rooms from before coalesced mirroring get the column at 0:
    // their positions are written to D1 once more by the next flush (max(), so harmlessly).
    if (!sql.exec("SELECT * FROM reads LIMIT 0").columnNames.includes("mirrored")) {
      sql.exec("ALTER TABLE reads ADD COLUMN mirrored INTEGER NOT NULL DEFAULT 0");
    }
    // Deletions whose D1 mirror (the room's lastMessage) has not run yet.
    sql.exec("CREATE TABLE IF NOT EXISTS unmirrored_deletes (seq INTEGER PRIMARY KEY)");
    sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    this.mirrored = this.readMirrored();
  }

  /**
   * The mirror's watermark (`meta.mirrored_seq`): every message up to it has had its flush. Rooms from
   * before it kept a table of unflushed seqs (a row per message): they start just below its first row
   * (a message after that row whose job was already queued could be pushed a second time: only a
   * flush cut short by the deploy leaves such a row), and the table goes.
   */
  private readMirrored(): number {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'mirrored_seq'").toArray()[0];
    if (row) return Number(row.value);
    const legacy =
      this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'unmirrored'").toArray().length > 0;
    const first = legacy ? this.sql.exec<{ s: number | null }>("SELECT min(seq) AS s FROM unmirrored").one().s : null;
    const mirrored =
      first !== null
        ? first - 1
        : this.sql.exec<{ s: number }>("SELECT coalesce(max(seq), 0) AS s FROM messages").one().s;
    this.sql.exec("INSERT INTO meta (key, value) VALUES ('mirrored_seq', ?)", String(mirrored));
    if (legacy) this.sql.exec("DROP TABLE unmirrored");
    return mirrored;
  }

  /** The room id is the object's name; remembered so messages and alarms can carry it. */
  bind(roomId: string): void {
    if (this.boundRoomId === roomId) return;
    this.sql.exec("INSERT INTO meta (key, value) VALUES ('room_id', ?) ON CONFLICT (key) DO NOTHING", roomId);
    this.boundRoomId = this.roomId();
  }

  roomId(): string {
    if (this.boundRoomId) return this.boundRoomId;
    const row = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'room_id'").toArray()[0];
    if (!row) throw new Error("chat room used before it was bound to a room id");
    this.boundRoomId = row.value;
    return row.value;
  }

  /** The messages a `SELECT * FROM messages ...` query returns. */
  messages(query: string, ...bindings: SqlStorageValue[]): Message[] {
    return this.sql
      .exec<MessageRow>(query, ...bindings)
      .toArray()
      .map((r) => this.toMessage(r));
  }

  at(seq: number): Message | undefined {
    return this.messages("SELECT * FROM messages WHERE seq = ?", seq)[0];
  }

  byClientId(senderId: string, clientId: string): Message | undefined {
    return this.messages("SELECT * FROM messages WHERE sender_id = ? AND client_id = ?", senderId, clientId)[0];
  }

  /** Whether this sender stored a message with this clientId (read from the unique index alone). */
  hasClientId(senderId: string, clientId: string): boolean {
    const found = this.sql.exec("SELECT 1 FROM messages WHERE sender_id = ? AND client_id = ?", senderId, clientId);
    return found.toArray().length > 0;
  }

  lastSeq(): number {
    this.last ??= this.sql.exec<{ s: number }>("SELECT coalesce(max(seq), 0) AS s FROM messages").one().s;
    return this.last;
  }

  /** A page of history in seq order; see `HistoryQuery` for the two directions. */
  history(q: HistoryQuery): { items: Message[]; more: boolean } {
    const before = q.before ?? Number.MAX_SAFE_INTEGER;
    if (q.after !== undefined) {
      const page = this.messages(
        "SELECT * FROM messages WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?",
        q.after,
        before,
        q.limit + 1,
      );
      return { items: page.slice(0, q.limit), more: page.length > q.limit };
    }
    // Newest page before `before` (or the latest page), returned oldest first.
    const page = this.messages("SELECT * FROM messages WHERE seq < ? ORDER BY seq DESC LIMIT ?", before, q.limit + 1);
    return { items: page.slice(0, q.limit).reverse(), more: page.length > q.limit };
  }

  /**
   * Commits a message (owed to the mirror), or returns the one this sender already sent with this
   * clientId: the insert is skipped on the (sender_id, client_id) key, so a new message costs no lookup.
   */
  store(senderId: string, input: SendInput): { message: Message; created: boolean } {
    const seq = this.lastSeq() + 1;
    const row: MessageRow = {
      seq,
      id: newId(),
      sender_id: senderId,
      client_id: input.clientId,
      text: input.text ?? null,
      file_id: input.fileId ?? null,
      created_at: nowIso(),
      deleted: 0,
    };
    const inserted = this.sql.exec(
      "INSERT INTO messages (seq, id, sender_id, client_id, text, file_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) " +
        "ON CONFLICT (sender_id, client_id) DO NOTHING",
      row.seq,
      row.id,
      row.sender_id,
      row.client_id,
      row.text,
      row.file_id,
      row.created_at,
    );
    inserted.toArray();
    if (inserted.rowsWritten === 0) {
      const existing = this.byClientId(senderId, input.clientId);
      if (!existing) throw new Error("chat: a message insert was skipped but no message has its clientId");
      return { message: existing, created: false };
    }
    // One row per message: it is owed to the mirror by being above `mirrored`, and the sender's read
    // position moves to it when the flush carries it (`readOf` counts it until then).
    this.last = seq;
    return { message: this.toMessage(row), created: true };
  }

  /** The mirror's watermark: every message up to this seq has had its flush (D1 and push job). */
  mirroredSeq(): number {
    return this.mirrored;
  }

  /** Moves the watermark forward to `seq` (never back). */
  markMirrored(seq: number): void {
    if (seq <= this.mirrored) return;
    this.sql.exec("UPDATE meta SET value = ? WHERE key = 'mirrored_seq'", String(seq));
    this.mirrored = seq;
  }

  /**
   * Writes the read positions that sending implies (everything up to one's own message) for the
   * messages above the watermark: one statement per flush instead of a write per message.
   */
  settleSenderReads(): void {
    this.sql.exec(LOG_SQL.settleSenderReads, this.mirrored);
  }

  /** Turns message `seq` into a tombstone (owed to the mirror). */
  tombstone(seq: number): void {
    this.sql.exec("UPDATE messages SET text = NULL, file_id = NULL, deleted = 1 WHERE seq = ?", seq);
    this.sql.exec("INSERT INTO unmirrored_deletes (seq) VALUES (?) ON CONFLICT (seq) DO NOTHING", seq);
  }

  isDeleted(seq: number): boolean {
    return (
      this.sql.exec<{ deleted: number }>("SELECT deleted FROM messages WHERE seq = ?", seq).toArray()[0]?.deleted === 1
    );
  }

  /** The user's read position, counting their own messages the mirror has not carried yet (`store`). */
  readOf(userId: string): number {
    return this.sql.exec<{ s: number }>(LOG_SQL.readOf, userId, this.mirrored).one().s;
  }

  /** The messages above the watermark, in seq order (what the next flush carries). */
  unflushed(): Message[] {
    return this.messages(LOG_SQL.unflushed, this.mirrored);
  }

  /** Moves `userId`'s read position to `seq` if that is forward (owed to the mirror). */
  moveRead(userId: string, seq: number): void {
    this.sql.exec(UPSERT_READ, userId, seq);
  }

  private toMessage(r: MessageRow): Message {
    const m: Message = {
      id: r.id,
      roomId: this.roomId(),
      seq: r.seq,
      clientId: r.client_id,
      senderId: r.sender_id,
      text: r.text,
      fileId: r.file_id,
      createdAt: r.created_at,
    };
    return r.deleted ? { ...m, text: null, fileId: null, deleted: true } : m;
  }
}

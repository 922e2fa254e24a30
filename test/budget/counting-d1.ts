/**
 * A D1 binding that counts what reaches the database, for query budgets. Wraps (does not proxy)
 * the real binding: workerd's D1 classes keep their state in private fields, so the real methods
 * are always called on the real objects, and `batch()` gets the real statements back.
 */

export interface D1Call {
  /** `statement` = one prepared statement run (run/all/first/raw); `batch` = one db.batch(); `exec` = one exec(). */
  kind: "statement" | "batch" | "exec";
  /** SQL text (for a batch, each statement's SQL joined with " ; "). */
  sql: string;
  /** Statements in this round trip (1 for a statement, n for a batch). */
  statements: number;
  /** Most bound parameters of any statement in this round trip (D1 allows 100 per statement). */
  params: number;
}

export interface D1Counter {
  calls: D1Call[];
  /** The constraint or bookmark each `withSession()` was opened with, in order (not a round trip). */
  sessions: string[];
  /** D1 round trips: each statement run, each batch and each exec counts once. */
  readonly roundTrips: number;
  readonly batches: number;
  reset(): void;
  describe(): string;
}

type AnyStmt = D1PreparedStatement;

export function countingD1(real: D1Database): { db: D1Database; counter: D1Counter } {
  const calls: D1Call[] = [];
  const sessions: string[] = [];
  const realOf = new WeakMap<object, { stmt: AnyStmt; sql: string; params: number }>();

  const wrapStmt = (stmt: AnyStmt, sql: string, params = 0): AnyStmt => {
    const record = <T>(p: Promise<T>): Promise<T> => {
      calls.push({ kind: "statement", sql, statements: 1, params });
      return p;
    };
    const w = {
      bind: (...values: unknown[]) => wrapStmt(stmt.bind(...values), sql, values.length),
      first: (col?: string) => record(col === undefined ? stmt.first() : stmt.first(col)),
      run: () => record(stmt.run()),
      all: () => record(stmt.all()),
      raw: (opts?: { columnNames?: boolean }) =>
        record(opts?.columnNames ? stmt.raw({ columnNames: true }) : stmt.raw()),
    };
    realOf.set(w, { stmt, sql, params });
    return w as unknown as AnyStmt;
  };

  const unwrap = (stmts: AnyStmt[]) =>
    stmts.map((s) => {
      const r = realOf.get(s as object);
      if (!r) throw new Error("countingD1: batch() got a statement that was not prepared through the counting binding");
      return r;
    });

  const wrapDb = <D extends { prepare(q: string): AnyStmt; batch(s: AnyStmt[]): Promise<D1Result[]> }>(d: D) => ({
    prepare: (query: string) => wrapStmt(d.prepare(query), query),
    batch: (stmts: AnyStmt[]) => {
      const inner = unwrap(stmts);
      calls.push({
        kind: "batch",
        sql: inner.map((i) => i.sql).join(" ; "),
        statements: inner.length,
        params: Math.max(0, ...inner.map((i) => i.params)),
      });
      return d.batch(inner.map((i) => i.stmt));
    },
  });

  const db = {
    ...wrapDb(real),
    exec: (query: string) => {
      calls.push({ kind: "exec", sql: query, statements: 1, params: 0 });
      return real.exec(query);
    },
    dump: () => real.dump(),
    withSession: (constraint?: string) => {
      sessions.push(String(constraint));
      const session = real.withSession(constraint as D1SessionConstraint);
      return { ...wrapDb(session), getBookmark: () => session.getBookmark() };
    },
  };

  const counter: D1Counter = {
    calls,
    sessions,
    get roundTrips() {
      return calls.length;
    },
    get batches() {
      return calls.filter((c) => c.kind === "batch").length;
    },
    reset() {
      calls.length = 0;
      sessions.length = 0;
    },
    describe() {
      return (
        calls
          .map((c, i) => `${i + 1}. ${c.kind}${c.kind === "batch" ? `(${c.statements})` : ""}: ${c.sql.slice(0, 200)}`)
          .join("\n") || "(no D1 calls)"
      );
    },
  };
  return { db: db as unknown as D1Database, counter };
}

/**
 * A D1 binding with a lagging read replica: sessions opened without "first-primary" (what a request
 * without a bookmark gets) read the named tables as they were at the last `snapshot()`; the primary,
 * and every write, sees the real tables. Wraps the real binding (workerd's D1 objects keep private
 * state, so the real methods run on the real objects).
 */
import { env } from "cloudflare:workers";

export interface LaggyD1 {
  db: D1Database;
  /** Takes the replica's copy of the tables now: later changes are not seen by replica reads. */
  snapshot(): Promise<void>;
  /** Constraints sessions were opened with, in order. */
  sessions: string[];
}

export function laggyD1(tables: string[], real: D1Database = env.DB): LaggyD1 {
  const sessions: string[] = [];
  const stale = (t: string) => `lag_${t}`;
  const pattern = new RegExp(`\\b(${tables.join("|")})\\b`, "g");
  // Reads only: a replica forwards writes to the primary.
  const asReplica = (query: string) =>
    /^\s*(select|with)\b/i.test(query) ? query.replace(pattern, (t) => stale(t)) : query;

  const db = {
    prepare: (query: string) => real.prepare(query),
    batch: (stmts: D1PreparedStatement[]) => real.batch(stmts),
    exec: (query: string) => real.exec(query),
    dump: () => real.dump(),
    withSession: (constraint?: string) => {
      sessions.push(String(constraint));
      const session = real.withSession(constraint as D1SessionConstraint);
      if (constraint === "first-primary") return session;
      return {
        prepare: (query: string) => session.prepare(asReplica(query)),
        batch: (stmts: D1PreparedStatement[]) => session.batch(stmts),
        getBookmark: () => session.getBookmark(),
      };
    },
  };

  return {
    db: db as unknown as D1Database,
    sessions,
    async snapshot() {
      await real.batch(
        tables.flatMap((t) => [
          real.prepare(`DROP TABLE IF EXISTS ${stale(t)}`),
          real.prepare(`CREATE TABLE ${stale(t)} AS SELECT * FROM ${t}`),
        ]),
      );
    },
  };
}

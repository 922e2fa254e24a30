/** SQLite's query plan for a statement, as the query-plan tests read it. */
import { env } from "cloudflare:workers";

/** The `EXPLAIN QUERY PLAN` lines of `sql` with `params`, one per line. */
export async function explain(sql: string, params: unknown[]): Promise<string> {
  const res = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
    .bind(...params)
    .all<{ detail: string }>();
  return res.results.map((r) => r.detail).join("\n");
}

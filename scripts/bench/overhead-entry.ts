// Bundled by scripts/bench/overhead.mjs for Node: Outpost's app and a hello-world handler doing
// the same D1 statements, both over the same in-process D1 (node:sqlite), so the difference
// between them is Outpost's own work per request. Not part of the Worker.
import { app } from "../../src/router";

export { app };

/** The statements of GET record, list and create, as drizzle sends them (as in the reference of bench/runtime.mjs). */
const COLS = `"id", "owner_id", "created_at", "updated_at", "version", "title", "body", "pinned", "tags"`;
const SQL = {
  get: `select ${COLS} from "app_notes" where ("app_notes"."id" = ? and "app_notes"."owner_id" = ?)`,
  list:
    `select ${COLS} from "app_notes" where ("app_notes"."owner_id" = ? and "app_notes"."pinned" = ?) ` +
    'order by "app_notes"."created_at" desc, "app_notes"."id" desc limit ?',
  createRecord:
    `insert into "app_notes" (${COLS}) select ? as "id", ? as "owner_id", ? as "created_at", ? as "updated_at", ` +
    `? as "version", ? as "title", ? as "body", ? as "pinned", ? as "tags" from "users" where "users"."id" = ? ` +
    `returning ${COLS}`,
  createChange:
    `insert into "record_changes" ("seq", "collection", "record_id", "owner_id", "version", "deleted", "changed_at") ` +
    `select ? as "seq", ? as "collection", ? as "record_id", ? as "owner_id", ? as "version", ? as "deleted", ` +
    `? as "changed_at" from "users" where "users"."id" = ?`,
};

/** The reference: a bare fetch handler doing exactly the route's D1 work. */
export async function hello(req: Request, env: { DB: D1Database }): Promise<Response> {
  const url = new URL(req.url);
  const q = (k: string) => url.searchParams.get(k);
  switch (url.pathname) {
    case "/d1":
      await env.DB.prepare("SELECT 1").first();
      break;
    case "/get":
      return Response.json(await env.DB.prepare(SQL.get).bind(q("id"), q("owner")).first());
    case "/list": {
      const { results } = await env.DB.prepare(SQL.list).bind(q("owner"), 1, 21).all();
      return Response.json({ items: results.slice(0, 20), nextCursor: null });
    }
    case "/create": {
      const body = (await req.json()) as { title: string; body?: string; pinned?: boolean; tags?: string[] };
      const owner = q("owner");
      const id = crypto.randomUUID();
      const now = new Date().toISOString();
      const [rec] = await env.DB.batch([
        env.DB.prepare(SQL.createRecord).bind(
          id,
          owner,
          now,
          now,
          1,
          body.title,
          body.body ?? "",
          body.pinned ? 1 : 0,
          JSON.stringify(body.tags ?? []),
          owner,
        ),
        env.DB.prepare(SQL.createChange).bind(null, "notes", id, owner, 1, 0, now, owner),
      ]);
      return Response.json(rec?.results[0], { status: 201 });
    }
  }
  return new Response("Hello, world!", { headers: { "content-type": "text/plain" } });
}

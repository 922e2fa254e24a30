// Bundled by `npm run bench` (scripts/bench/runtime.mjs, `buildWorker({ inRuntime: true })`) for its
// "in Outpost's runtime" rows: the Worker exactly as deployed, plus two bare handlers under
// `/bench/` that do what the hello-world reference does (a D1 session, the route's statement, a
// JSON answer with the bookmark) inside the same isolate, bindings and D1. The ratio between a route
// and its bare handler here is the route's own work alone, without what the runtime around it costs.
// Not part of the Worker.
import { BOOKMARK_HEADER } from "../../src/db";
import worker from "../../src/index";
import SQL from "./reference-sql.json";

export * from "../../src/index";

async function bare(req: Request, env: Env): Promise<Response> {
  const url = new URL(req.url);
  const db = env.DB.withSession(req.headers.get(BOOKMARK_HEADER) ?? "first-unconstrained");
  let body: unknown;
  if (url.pathname === "/bench/get") {
    body = await db.prepare(SQL.get).bind(url.searchParams.get("id"), url.searchParams.get("owner")).first();
  } else {
    await db.prepare("SELECT 1").first();
    body = { status: "ok" };
  }
  const res = Response.json(body);
  const bookmark = db.getBookmark();
  if (bookmark) res.headers.set(BOOKMARK_HEADER, bookmark);
  return res;
}

export default {
  ...worker,
  fetch: (req, env, ctx) => (req.url.includes("/bench/") ? bare(req, env) : worker.fetch(req, env, ctx)),
} satisfies ExportedHandler<Env, never>;

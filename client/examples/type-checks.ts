// Compile-time checks of the generated types (tsc -p examples): each line marked as an expected
// error below must stay an error, or the type check fails.
import { createClient } from "@outpost/client";
import type { AppConfig, AppRoutes, Collections } from "./outpost-types.ts";

const client = createClient<Collections, AppRoutes>({ url: "http://localhost" });
const notes = client.collection("notes");
const lists = client.collection("lists");

// Remote config: `get(key)` is typed from the code defaults.
const configured = createClient<Collections, AppRoutes, AppConfig>({
  url: "http://localhost",
  app: { platform: "ios", version: "1.0.0" },
});
const pageSize: number | undefined = configured.config.get("feed.pageSize");
const minimum: string | null | undefined = configured.config.get("minVersion.ios");
// @ts-expect-error a key the app does not declare
configured.config.get("no.such.key");
// @ts-expect-error a number key is not a string
const wrong: string | undefined = configured.config.get("feed.pageSize");
void [pageSize, minimum, wrong];

export async function checks(): Promise<void> {
  const n = await notes.create({ title: "ok" });
  const title: string = n.title;
  const version: number = n.version;
  await notes.update(n.id, { pinned: true });
  notes.watch(
    { where: { title: { $contains: "x" }, createdAt: { $gte: "2026-01-01" } }, sort: "-updatedAt" },
    (s) => s.items[0]?.tags,
  );
  void [title, version];

  // References: expand is typed from the referenced collection (null when unreadable).
  const comments = client.collection("comments");
  const page = await comments.list({ where: { postId: "p" }, expand: ["postId", "replyTo"] });
  const postText: string | undefined = page.items[0]?.expand.postId?.text;
  const one = await comments.expanded("c", ["postId"]);
  const postVersion: number | undefined = one.expand.postId?.version;
  void [postText, postVersion];
  // @ts-expect-error only reference fields expand
  await comments.list({ expand: ["text"] });
  // @ts-expect-error a field that was not expanded is not there
  void one.expand.replyTo;

  // @ts-expect-error an unknown collection
  client.collection("nope");
  // @ts-expect-error title is required
  await notes.create({ body: "no title" });
  // @ts-expect-error wrong field type
  await notes.update(n.id, { pinned: "yes" });
  // @ts-expect-error unknown field in where
  await notes.query({ where: { colour: "red" } });
  // @ts-expect-error arrays are filtered with $contains only
  await notes.query({ where: { tags: ["a"] } });
  // @ts-expect-error booleans have no ranges
  await notes.query({ where: { pinned: { $gt: false } } });
  // @ts-expect-error arrays cannot be sorted on
  await notes.query({ sort: "tags" });
  // @ts-expect-error not a field
  await notes.query({ sort: "-colour" });

  // Team-scoped: teamId on every record, required on create, never sent again.
  const l = await lists.create({ teamId: "t1", title: "Groceries" });
  const teamId: string = l.teamId;
  await lists.update(l.id, { title: "Weekly" });
  await lists.replace(l.id, { title: "Weekly" });
  await lists.query({ where: { teamId }, sort: "title" });
  lists.watch({ teamId, sort: "title" }, (s) => s.stopped?.code === "removed_from_team");
  // @ts-expect-error teamId is required on create
  await lists.create({ title: "no team" });
  // @ts-expect-error a record never changes team
  await lists.update(l.id, { teamId: "t2" });
  // @ts-expect-error nor on replace
  await lists.replace(l.id, { teamId: "t2", title: "x" });
  // @ts-expect-error only team-scoped collections follow one team
  notes.watch({ teamId: "t1" }, () => undefined);

  // The app's own routes: path, params, body and answer typed from the generated AppRoutes.
  const cleared = await client.app.post("/lists/{id}/clear-done", { params: { id: l.id }, idempotencyKey: "k1" });
  const deleted: number = cleared.deleted;
  void deleted;
  // @ts-expect-error the route's params are required
  await client.app.post("/lists/{id}/clear-done");
  // @ts-expect-error params are named as in the path
  await client.app.post("/lists/{id}/clear-done", { params: { listId: "x" } });
  // @ts-expect-error the route takes an empty body
  await client.app.post("/lists/{id}/clear-done", { params: { id: "x" }, body: { all: true } });
  // @ts-expect-error not an app route
  await client.app.post("/lists/{id}/nope", { params: { id: "x" } });
  // @ts-expect-error the route answers POST only
  await client.app.get("/lists/{id}/clear-done", { params: { id: "x" } });
  // @ts-expect-error the answer has no other field
  void cleared.remaining;
  // Without generated types: any path, untyped answer.
  const untyped = createClient({ url: "http://localhost" });
  const any: unknown = await untyped.app.get("/anything/{x}", { params: { x: 1 }, query: { q: "a" } });
  void any;
}

/**
 * The migrations hold the event triggers and after-hook listeners the declarations want: the test
 * database (migrated from migrations/) has exactly the triggers `eventSources` makes for the declared
 * collections, `users` and `files`, and exactly the `hook` listener rows of the declared after hooks.
 * (CI's check:drift says when a migration is due; this checks what the migrations actually did.)
 */
import { env } from "cloudflare:workers";
import { getTableColumns } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { collections } from "../../../src/features/collections";
import {
  createEventTriggersSql,
  dropEventTriggersSql,
  eventSources,
  hookListenersSql,
} from "../../../src/features/logic/events-ddl";
import { hookedEvents } from "../../../src/features/logic/registry";

describe("event triggers and listeners in the migrated database", () => {
  it("every table that raises events has exactly the triggers its declaration wants", async () => {
    const sources = eventSources(
      collections.map((c) => ({ name: c.name, columns: Object.values(getTableColumns(c.table)).map((x) => x.name) })),
    );
    const installed = await env.DB.prepare(
      "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%\\_event\\_%' ESCAPE '\\' ORDER BY name",
    ).all<{ sql: string }>();
    const wanted = sources.flatMap(createEventTriggersSql).sort();
    expect(installed.results.map((r) => r.sql).sort()).toEqual(wanted);
    expect(wanted.length).toBe(collections.length * 3 + 2 + 2);
  });

  it("the hook listener rows are the declared after hooks' events", async () => {
    const rows = await env.DB.prepare("SELECT event FROM event_listeners WHERE source = 'hook' ORDER BY event").all<{
      event: string;
    }>();
    expect(rows.results.map((r) => r.event)).toEqual(hookedEvents());
    expect(hookedEvents()).toEqual(["comments.create", "users.create"]);
  });

  it("a table's triggers drop and come back whole (what a later migration does when columns change)", async () => {
    const col = collections.find((c) => c.name === "posts")!;
    const [posts] = eventSources([
      { name: "posts", columns: Object.values(getTableColumns(col.table)).map((x) => x.name) },
    ]);
    const names = async () =>
      (
        await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'app_posts'").all<{
          name: string;
        }>()
      ).results
        .map((r) => r.name)
        .filter((n) => n.includes("_event_"))
        .sort();
    expect(await names()).toEqual(["app_posts_event_create", "app_posts_event_delete", "app_posts_event_update"]);
    await env.DB.batch(dropEventTriggersSql("app_posts").map((q) => env.DB.prepare(q)));
    expect(await names()).toEqual([]);
    await env.DB.batch(createEventTriggersSql(posts!).map((q) => env.DB.prepare(q)));
    expect(await names()).toEqual(["app_posts_event_create", "app_posts_event_delete", "app_posts_event_update"]);
  });

  it("the listener statements replace the hook rows and leave webhooks' rows alone", async () => {
    await env.DB.prepare("INSERT INTO event_listeners (event, source) VALUES ('notes.create', 'webhook:x')").run();
    await env.DB.batch(hookListenersSql(["posts.update"]).map((q) => env.DB.prepare(q)));
    const rows = await env.DB.prepare("SELECT event, source FROM event_listeners ORDER BY source, event").all();
    expect(rows.results).toEqual([
      { event: "posts.update", source: "hook" },
      { event: "notes.create", source: "webhook:x" },
    ]);
  });
});

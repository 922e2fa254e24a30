/**
 * Issue 13.4: tombstones older than the retention are pruned by the cron task; a cursor older than
 * what was pruned gets 410 `resync_required` (REST) or the error frame and close 4410 (socket). A
 * sync without a cursor still returns each live record once. The clock is injected (the task's `now`).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { limits } from "../../../src/config";
import { primaryDb } from "../../../src/db";
import { changeLogRetention } from "../../../src/features/collections/retention";
import { lifecycle } from "../../../src/lifecycle-parts";
import { handleScheduled } from "../../../src/scheduled";
import { api, expectProblem, signup, type TestUser } from "../../helpers/api";
import { base, createNote, createPost } from "./helpers";
import { LiveSocket, subscribe, subscribeRequest } from "./live-helpers";

const DAY = 24 * 60 * 60 * 1000;
const notes = `${base("notes")}/records`;
const feed = (name: string, user: TestUser, since?: string) =>
  api(`${base(name)}/changes?limit=200${since ? `&since=${since}` : ""}`, { token: user.accessToken });

/** Runs the cron handler as if it fired `days` from now. */
const cronIn = (days: number) =>
  handleScheduled(
    { scheduledTime: Date.now() + days * DAY, cron: "*/15 * * * *", noRetry() {} } as ScheduledController,
    env,
  );

describe("retention of the change log", () => {
  // A newer cursor and a fresh sync still work.
  it("the cron prunes tombstones past retention; an older cursor → 410 resync_required", async () => {
    expect(lifecycle.cleanupTasks).toContain(changeLogRetention);
    const user = await signup();
    const [a, b, c] = [
      await createNote(user, { title: "a" }),
      await createNote(user, { title: "b" }),
      await createNote(user, { title: "c" }),
    ];
    const beforeDelete = (await feed("notes", user)).body.nextCursor;
    expect((await api(`${notes}/${b.id}`, { method: "DELETE", token: user.accessToken })).status).toBe(204);
    const a2 = (await api(`${notes}/${a.id}`, { method: "PATCH", token: user.accessToken, body: { title: "a2" } }))
      .body;
    const afterDelete = (await feed("notes", user)).body.nextCursor;

    // Within retention nothing is pruned and the old cursor works.
    await cronIn(limits.changeLogRetentionDays - 1);
    expect((await feed("notes", user, beforeDelete)).status).toBe(200);

    await cronIn(limits.changeLogRetentionDays + 1);
    const gone = expectProblem(await feed("notes", user, beforeDelete), 410, "resync_required");
    expect(gone.detail).toMatch(/without a cursor/i);
    // A cursor that already covers the pruned tombstone keeps working.
    const ok = await feed("notes", user, afterDelete);
    expect(ok.status).toBe(200);
    expect(ok.body.items).toEqual([]);
    // A sync without a cursor returns each live record once, and no pruned tombstone.
    const fresh = await feed("notes", user);
    expect(fresh.status).toBe(200);
    expect(fresh.body.items).toEqual([c, a2]);
    // Live records' rows are the feed itself: never pruned.
    const rows = (
      await env.DB.prepare("SELECT record_id, deleted FROM record_changes WHERE owner_id = ? ORDER BY seq")
        .bind(user.id)
        .all()
    ).results;
    expect(rows).toEqual([
      { record_id: c.id, deleted: 0 },
      { record_id: a.id, deleted: 0 },
    ]);
  });

  it("the horizon is per collection, and recent tombstones stay", async () => {
    const user = await signup();
    const post = await createPost(user, "p");
    const postCursor = (await feed("posts", user)).body.nextCursor;
    const old = await createNote(user, { title: "old" });
    expect((await api(`${notes}/${old.id}`, { method: "DELETE", token: user.accessToken })).status).toBe(204);
    await changeLogRetention(env, primaryDb(env.DB), new Date(Date.now() + (limits.changeLogRetentionDays + 1) * DAY));
    // Pruning notes' tombstones says nothing about posts.
    expect((await feed("posts", user, postCursor)).status).toBe(200);
    // A tombstone younger than the retention stays in the feed.
    const recent = await createNote(user, { title: "recent" });
    const cursor = (await feed("notes", user)).body.nextCursor;
    expect((await api(`${notes}/${recent.id}`, { method: "DELETE", token: user.accessToken })).status).toBe(204);
    await changeLogRetention(env, primaryDb(env.DB), new Date(Date.now() + DAY));
    expect((await feed("notes", user, cursor)).body.items).toEqual([{ id: recent.id, deleted: true, version: 2 }]);
    expect(post.id).toBeDefined();
  });

  it("a socket whose cursor is past retention gets { type: error, code: resync_required } and close 4410", async () => {
    const user = await signup();
    const n = await createNote(user, { title: "x" });
    const stale = (await feed("notes", user)).body.nextCursor;
    expect((await api(`${notes}/${n.id}`, { method: "DELETE", token: user.accessToken })).status).toBe(204);
    await cronIn(limits.changeLogRetentionDays + 1);
    const res = await subscribeRequest("notes", { token: user.accessToken, since: stale });
    expect(res.status).toBe(101);
    const socket = new LiveSocket(res.webSocket!);
    expect(await socket.next("error")).toMatchObject({ type: "error", code: "resync_required" });
    expect((await socket.closedWithin()).code).toBe(4410);
    expect(socket.allChanges()).toEqual([]);
    // Without a cursor: a full replay, then live.
    const again = await subscribe(user, "notes");
    expect(again.replayed).toEqual([]);
    again.socket.close();
  });
});

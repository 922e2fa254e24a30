/**
 * The app's schedules (src/app/schedules.ts) run through the Worker's own `scheduled` handler: the
 * nightly clean-up deletes done items older than 7 days (through the write path: tombstones in
 * /changes) and keeps the rest; crons with no schedule run none; `schedule()` refuses bad crons.
 */
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { clearOldDoneItems } from "../../../src/app/schedules";
import { schedule } from "../../../src/features/logic";
import { compareCrons, cronProblem, SCHEDULE, wantedCrons } from "../../../src/features/logic/schedule";
import worker from "../../../src/index";
import { api, signup, type TestUser } from "../../helpers/api";
import { createTeam, listIn } from "../teams/helpers";

const ITEMS = "/v1/collections/items";
const NIGHTLY = "30 3 * * *";
const DAY = 24 * 60 * 60 * 1000;

/** Fires `cron` through the Worker's scheduled handler and waits for everything it deferred. */
async function fire(cron: string, scheduledTime = Date.now()) {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ cron, scheduledTime }), env, ctx);
  await waitOnExecutionContext(ctx);
}

let owner: TestUser;
let teamId: string;
let listId: string;

async function item(text: string, done: boolean, ageDays = 0): Promise<string> {
  const res = await api(`${ITEMS}/records`, { token: owner.accessToken, body: { teamId, listId, text, done } });
  expect(res.status, res.text).toBe(201);
  if (ageDays) {
    const at = new Date(Date.now() - ageDays * DAY).toISOString();
    await env.DB.prepare("UPDATE app_items SET updated_at = ? WHERE id = ?").bind(at, res.body.id).run();
  }
  return res.body.id as string;
}

const exists = async (id: string) => {
  const res = await api(`${ITEMS}/records/${id}`, { token: owner.accessToken });
  expect([200, 404], res.text).toContain(res.status);
  return res.status === 200;
};

/** The team's change feed from `since` to its end. */
async function changesSince(since?: string) {
  const items: { id: string; deleted?: boolean }[] = [];
  let cursor = since;
  for (;;) {
    const q = new URLSearchParams({ limit: "200", ...(cursor ? { since: cursor } : {}) });
    const res = await api(`${ITEMS}/changes?${q}`, { token: owner.accessToken });
    expect(res.status, res.text).toBe(200);
    items.push(...res.body.items);
    cursor = res.body.nextCursor;
    if (!res.body.hasMore) return { items, cursor: cursor! };
  }
}

beforeAll(async () => {
  owner = await signup();
  teamId = (await createTeam(owner)).id;
  listId = await listIn(teamId);
});

describe("schedules: the nightly clean-up of done items", () => {
  it("deletes done items last changed over 7 days ago, keeps newer and unfinished ones, tombstones in /changes", async () => {
    const oldDone = await item("old and done", true, 8);
    const oldOpen = await item("old, not done", false, 30);
    const newDone = await item("done yesterday", true, 1);
    const almost = await item("done 6 days ago", true, 6);
    const { cursor } = await changesSince();

    await fire(NIGHTLY);

    expect(await exists(oldDone)).toBe(false);
    for (const id of [oldOpen, newDone, almost]) expect(await exists(id)).toBe(true);
    const feed = await changesSince(cursor);
    expect(feed.items).toEqual([{ id: oldDone, deleted: true, version: 2 }]);
  });

  it("pages past 100 matches in one run", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 130; i += 10)
      ids.push(...(await Promise.all(Array.from({ length: 10 }, (_, j) => item(`bulk ${i + j}`, true, 10)))));
    const keep = await item("bulk, fresh", true);

    await fire(NIGHTLY);

    const left = await env.DB.prepare("SELECT count(*) AS n FROM app_items WHERE text LIKE 'bulk %' AND team_id = ?")
      .bind(teamId)
      .first<{ n: number }>();
    expect(left?.n).toBe(0);
    expect(await exists(keep)).toBe(true);
  });

  it("a cron with no schedule runs nothing; the housekeeping cron runs no app schedule", async () => {
    const oldDone = await item("old, done, untouched", true, 9);
    // A revocation the housekeeping would prune: another cron leaves it.
    const old = Math.floor(Date.now() / 1000) - 16 * 60;
    await env.DB.prepare("INSERT INTO token_revocations (user_id, revoked_at, reason) VALUES (?, ?, 'ended')")
      .bind(owner.id, old)
      .run();
    const revoked = () => env.DB.prepare("SELECT 1 FROM token_revocations WHERE user_id = ?").bind(owner.id).first();
    await fire("0 0 1 1 *");
    expect(await revoked()).not.toBeNull();
    await fire("*/15 * * * *");
    expect(await revoked()).toBeNull();
    expect(await exists(oldDone)).toBe(true);
    await fire(NIGHTLY);
    expect(await exists(oldDone)).toBe(false);
  });
});

describe("schedules: a failure stays with its schedule", () => {
  it("a throwing schedule on the housekeeping cron is logged, and the housekeeping tasks still run", async () => {
    // The declared schedule, moved to the housekeeping cron and made to throw for this one run.
    const spec = clearOldDoneItems[SCHEDULE];
    const cron = spec.cron;
    spec.cron = "*/15 * * * *";
    const handler = vi.spyOn(spec, "handler").mockImplementation(() => {
      throw new Error("this schedule always fails");
    });
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const user = await signup();
    const old = Math.floor(Date.now() / 1000) - 16 * 60;
    await env.DB.prepare("INSERT INTO token_revocations (user_id, revoked_at, reason) VALUES (?, ?, 'ended')")
      .bind(user.id, old)
      .run();
    let calls = 0;
    let logged: string[] = [];
    try {
      await fire("*/15 * * * *");
      calls = handler.mock.calls.length;
      logged = errors.mock.calls.map((c) => c.join(" "));
    } finally {
      spec.cron = cron;
      handler.mockRestore();
      errors.mockRestore();
    }
    expect(calls).toBe(1);
    // Housekeeping (the revocation cleanup) pruned the old row all the same.
    const row = await env.DB.prepare("SELECT 1 FROM token_revocations WHERE user_id = ?").bind(user.id).first();
    expect(row).toBeNull();
    expect(logged).toContainEqual(
      expect.stringContaining('schedule "clear old done items" (*/15 * * * *) failed: this schedule always fails'),
    );
  });
});

describe("schedules: declarations", () => {
  const noop = () => {};

  it("accepts what Cloudflare's cron triggers accept", () => {
    for (const cron of [
      "* * * * *",
      "*/15 * * * *",
      "30 3 * * *",
      "0 9-17/2 * * MON-FRI",
      "5,35 0 1,15 jan,jul sun",
      "59 23 31 12 7",
      "0 0 * * 1-7",
    ])
      expect(cronProblem(cron), cron).toBeNull();
    expect(schedule("0 4 * * *", noop)).toBeTruthy();
  });

  it("refuses bad cron expressions at declaration", () => {
    for (const cron of [
      "",
      "* * * *",
      "* * * * * *",
      "60 * * * *",
      "* 24 * * *",
      "* * 0 * *",
      "* * 32 * *",
      "* * * 13 *",
      "* * * * 0",
      "* * * * 8",
      "*/0 * * * *",
      "5-1 * * * *",
      "1-2-3 * * * *",
      "1/2/3 * * * *",
      "a * * * *",
      "* * * FOO *",
      "* * * * MONDAY",
      " * * * * *",
      "*  * * * *",
      "1,,2 * * * *",
    ]) {
      expect(cronProblem(cron), JSON.stringify(cron)).not.toBeNull();
      expect(() => schedule(cron, noop), JSON.stringify(cron)).toThrow(/schedule\(/);
    }
  });

  it("wrangler.toml's crons must be Outpost's own plus the declared ones (check-crons)", () => {
    const wanted = wantedCrons([
      schedule("30 3 * * *", noop),
      schedule("30 3 * * *", noop),
      schedule("0 * * * *", noop),
    ]);
    expect(wanted).toEqual(["*/15 * * * *", "0 * * * *", "30 3 * * *"]);
    expect(compareCrons(wanted, ["0 * * * *", "*/15 * * * *", "30 3 * * *"])).toEqual({ missing: [], extra: [] });
    expect(compareCrons(wanted, ["*/15 * * * *", "0 5 * * *"])).toEqual({
      missing: ["0 * * * *", "30 3 * * *"],
      extra: ["0 5 * * *"],
    });
  });
});

/**
 * `app`, as hooks, schedules and app routes get it: records read and written as the service key
 * through the routes' own write path (their before hooks run, their changes reach `/changes`, live
 * data, after hooks and webhooks), mail, push. Wired in by the root (src/lifecycle-parts.ts).
 */
import { getConfig } from "../../config";
import type { Database } from "../../db";
import type { Principal } from "../../env";
import { AppError } from "../../errors";
import {
  createRecord,
  deleteRecord,
  findCollection,
  getRecord,
  listRecords,
  updateRecord,
  type Writer,
} from "../collections";
import type { Where } from "../collections/schemas";
import type { AppRecord, AppServices, ServiceContext } from "../logic";
import { createMailer } from "../mail";
import { queuePush } from "../push";

const SERVICE: Principal = { kind: "service" };
const PAGE = 100;

export function appServices(ctx: ServiceContext): AppServices {
  const db = ctx.db as Database;
  const w: Writer = { db, env: ctx.env, waitUntil: ctx.waitUntil, depth: ctx.depth ?? 0 };
  return {
    env: ctx.env,
    records(name) {
      const col = findCollection(name);
      if (!col) throw new Error(`app.records("${name}"): no such collection`);
      return {
        async get(id) {
          try {
            return (await getRecord(db, col, SERVICE, id)) as AppRecord;
          } catch (e) {
            if (e instanceof AppError && e.code === "not_found") return null;
            throw e;
          }
        },
        async list(o = {}) {
          const limit = Math.min(o.limit ?? PAGE, 1000);
          const items: AppRecord[] = [];
          let cursor: string | undefined;
          // Page by page until `limit` records (the routes' own pages are at most 100).
          do {
            const page = await listRecords(db, col, SERVICE, {
              where: o.where as Where | undefined,
              sort: o.sort ?? "createdAt",
              limit: Math.min(PAGE, limit - items.length),
              cursor,
            });
            items.push(...(page.items as AppRecord[]));
            cursor = page.nextCursor ?? undefined;
          } while (cursor && items.length < limit);
          return items;
        },
        async create(data) {
          return (await createRecord(w, col, SERVICE, data)).record as AppRecord;
        },
        async update(id, data, o = {}) {
          const r = await updateRecord(w, col, SERVICE, id, data, o.ifVersion === undefined ? null : [o.ifVersion]);
          return r.record as AppRecord;
        },
        async delete(id) {
          await deleteRecord(w, col, SERVICE, id, null);
        },
      };
    },
    async mail(m) {
      await createMailer(getConfig(ctx.env), db).send(m);
    },
    async push(userIds, m) {
      if (userIds.length) await queuePush(ctx.env, userIds, { title: m.title, body: m.body, data: m.data ?? {} });
    },
  };
}

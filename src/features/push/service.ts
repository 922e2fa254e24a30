/** Push data access: the device registry, and what delivery needs to look up (devices, mutes). */
import { and, desc, eq, inArray, lt, notInArray, or, sql } from "drizzle-orm";
import * as v from "valibot";
import { limits } from "../../config";
import { type Database, runBatch } from "../../db";
import { devices } from "../../db/schema";
import { AppError } from "../../errors";
import { chunks } from "../../lib/chunks";
import { decodeCursor, encodeCursor } from "../../lib/cursor";
import { newId, nowIso } from "../../lib/ids";
import { enqueue } from "../../lifecycle";
import type { Device, DeviceInput } from "./schemas";
import type { Provider, PushMessage } from "./senders/types";

type DeviceRow = typeof devices.$inferSelect;

const toDevice = (d: DeviceRow): Device => ({
  id: d.id,
  token: d.token,
  platform: d.platform,
  provider: d.provider,
  createdAt: d.createdAt,
  updatedAt: d.updatedAt,
});

/**
 * Registers a token for `userId`. A token already known (to anyone) is re-owned by the caller,
 * not duplicated: a phone changes hands, or an app reinstalls under another account. The user's
 * devices beyond the cap, least recently registered first, are dropped in the same batch.
 */
export async function registerDevice(
  db: Database,
  userId: string,
  input: DeviceInput,
): Promise<{ device: Device; created: boolean }> {
  const now = nowIso();
  const id = newId();
  const keep = db
    .select({ id: devices.id })
    .from(devices)
    .where(eq(devices.userId, userId))
    .orderBy(desc(devices.updatedAt), desc(devices.id))
    .limit(limits.pushDevicesPerUser);
  const [rows] = (await runBatch(db, [
    // One upsert, so two concurrent registrations of the same token cannot both insert.
    db
      .insert(devices)
      .values({
        id,
        userId,
        token: input.token,
        platform: input.platform,
        provider: input.provider,
        createdAt: now,
        updatedAt: now,
      })
      .onConflictDoUpdate({
        target: devices.token,
        set: { userId, platform: input.platform, provider: input.provider, updatedAt: now },
      })
      .returning(),
    db.delete(devices).where(and(eq(devices.userId, userId), notInArray(devices.id, keep))),
  ])) as [DeviceRow[], unknown];
  const row = rows[0];
  if (!row) throw new AppError("internal", "The device could not be stored.");
  return { device: toDevice(row), created: row.id === id };
}

/** List cursors hold the last row's sort time and id. */
const ListCursor = v.pipe(
  v.tuple([v.string(), v.string()]),
  v.transform(([at, id]) => ({ at, id })),
);
const encodeListCursor = (c: { at: string; id: string }) => encodeCursor([c.at, c.id]);

/** The caller's devices, most recently registered first. */
export async function listDevices(
  db: Database,
  userId: string,
  limit: number,
  cursor?: string,
): Promise<{ items: Device[]; nextCursor: string | null }> {
  const after = cursor ? decodeCursor(cursor, ListCursor) : null;
  const rows = await db
    .select()
    .from(devices)
    .where(
      and(
        eq(devices.userId, userId),
        after
          ? or(lt(devices.updatedAt, after.at), and(eq(devices.updatedAt, after.at), lt(devices.id, after.id)))
          : undefined,
      ),
    )
    .orderBy(desc(devices.updatedAt), desc(devices.id))
    .limit(limit + 1)
    .all();
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map(toDevice),
    nextCursor: rows.length > limit && last ? encodeListCursor({ at: last.updatedAt, id: last.id }) : null,
  };
}

/** Deletes one of the caller's devices; false when the caller has no such device. */
export async function deleteDevice(db: Database, userId: string, id: string): Promise<boolean> {
  const gone = await db
    .delete(devices)
    .where(and(eq(devices.id, id), eq(devices.userId, userId)))
    .returning({ id: devices.id });
  return gone.length > 0;
}

/** Where one notification goes: a device, and the user it was meant for. */
export interface Target {
  deviceId: string;
  userId: string;
}

export interface TargetDevice extends Target {
  token: string;
  provider: Provider;
}

/** Every device of these users. */
export async function devicesOfUsers(db: Database, userIds: readonly string[]): Promise<TargetDevice[]> {
  const out: TargetDevice[] = [];
  for (const ids of chunks([...new Set(userIds)])) {
    const rows = await db
      .select({ deviceId: devices.id, userId: devices.userId, token: devices.token, provider: devices.provider })
      .from(devices)
      .where(inArray(devices.userId, ids))
      .all();
    out.push(...rows);
  }
  return out;
}

/**
 * The devices of these targets that still belong to the user they were meant for. A device
 * re-owned by someone else since the job was queued must not get the first user's message.
 */
export async function devicesOfTargets(db: Database, targets: readonly Target[]): Promise<TargetDevice[]> {
  const wanted = new Map(targets.map((t) => [t.deviceId, t.userId]));
  const out: TargetDevice[] = [];
  for (const ids of chunks([...wanted.keys()])) {
    const rows = await db
      .select({ deviceId: devices.id, userId: devices.userId, token: devices.token, provider: devices.provider })
      .from(devices)
      .where(inArray(devices.id, ids))
      .all();
    out.push(...rows.filter((r) => wanted.get(r.deviceId) === r.userId));
  }
  return out;
}

/** Deletes devices whose tokens the provider reported dead. */
export async function deleteDevices(db: Database, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await runBatch(
    db,
    chunks(ids).map((c) => db.delete(devices).where(inArray(devices.id, c))),
  );
}

/** Administration: registered devices (of one user, or all), counted; one statement for the admin's batch. */
export function deviceCount(db: Database, userId?: string) {
  return db
    .select({ n: sql<number>`count(*)` })
    .from(devices)
    .where(userId === undefined ? undefined : eq(devices.userId, userId));
}

/** Queues an admin push to every device of `userIds` (the `push.send` job). */
export async function queuePush(env: Env, userIds: string[], message: PushMessage): Promise<void> {
  await enqueue(env, { type: "push.send", userIds, message });
}

/**
 * Whole-database invariants checked after a fuzz run: no orphan rows (declared foreign keys and the
 * references the schema keeps by hand) and storage accounting that matches the stored bytes.
 */
import { env } from "cloudflare:workers";
import { collections as declared } from "../../src/features/collections/registry";

const all = async <T>(sql: string) => (await env.DB.prepare(sql).all<T>()).results;

/**
 * Rows that point at a row that is not there. Declared foreign keys come from D1 itself
 * (`PRAGMA foreign_key_check`); the references the schema keeps without a declared key are listed
 * here: the record a change-log entry names, a record's owner, a user's avatar file, an upload's
 * session of bytes.
 */
export async function orphanRows(): Promise<string[]> {
  const out: string[] = [];
  for (const r of await all<{ table: string; parent: string; rowid: number }>("PRAGMA foreign_key_check"))
    out.push(`${r.table} rowid ${r.rowid} → missing ${r.parent}`);
  const collections = (
    await all<{ name: string }>(
      // The collections' tables (not their full-text tables and FTS5's shadow tables).
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'app\\_%' ESCAPE '\\' " +
        "AND name NOT LIKE '%\\_fts%' ESCAPE '\\'",
    )
  ).map((t) => t.name);
  const soft: [string, string][] = [
    [
      "users.avatar_file_id → files",
      "SELECT id FROM users WHERE avatar_file_id IS NOT NULL AND avatar_file_id NOT IN (SELECT id FROM files)",
    ],
    ["socket_tickets.user_id → users", "SELECT hash FROM socket_tickets WHERE user_id NOT IN (SELECT id FROM users)"],
  ];
  for (const t of collections) {
    const name = t.slice("app_".length);
    const live = `SELECT record_id FROM record_changes WHERE collection = '${name}' AND deleted = 0`;
    soft.push(
      [
        `${t}.owner_id → users`,
        `SELECT id FROM "${t}" WHERE owner_id IS NOT NULL AND owner_id NOT IN (SELECT id FROM users)`,
      ],
      [`record_changes (live, ${name}) → ${t}`, `${live} AND record_id NOT IN (SELECT id FROM "${t}")`],
      [`${t} → its record_changes entry`, `SELECT id FROM "${t}" WHERE id NOT IN (${live})`],
    );
  }
  // References (`field.ref`): deleting a target applies onDelete, so none may point at nothing.
  for (const col of declared)
    for (const [key, f] of Object.entries(col.fields)) {
      if (!f.ref) continue;
      const target = f.ref.target === "users" ? "users" : `app_${f.ref.target}`;
      const column = col.table[key]!.name;
      soft.push([
        `app_${col.name}.${column} → ${target}`,
        `SELECT id FROM "app_${col.name}" WHERE ${column} IS NOT NULL AND ${column} NOT IN (SELECT id FROM "${target}")`,
      ]);
    }
  for (const [what, sql] of soft) {
    const rows = await all<Record<string, unknown>>(sql);
    if (rows.length) out.push(`${what}: ${rows.length} orphan(s), e.g. ${JSON.stringify(rows.slice(0, 3))}`);
  }
  return out;
}

/**
 * The quota is the sum of `files.size` (plus unfinished uploads' declared lengths): each ready
 * file's size must equal its stored object's, and every stored object must belong to a file, an
 * upload or the trash (bytes nobody is charged for otherwise). Returns the mismatches, per user.
 */
export async function storageMismatches(): Promise<string[]> {
  const out: string[] = [];
  const rows = await all<{ id: string; owner_id: string; object_key: string; size: number; status: string }>(
    "SELECT id, owner_id, object_key, size, status FROM files",
  );
  const perUser = new Map<string, { counted: number; stored: number }>();
  for (const f of rows) {
    if (f.status !== "ready") continue;
    const head = await env.MEDIA.head(f.object_key);
    const u = perUser.get(f.owner_id) ?? { counted: 0, stored: 0 };
    u.counted += f.size;
    u.stored += head?.size ?? 0;
    perUser.set(f.owner_id, u);
    if (!head) out.push(`file ${f.id} (${f.owner_id}): no object at ${f.object_key}`);
  }
  for (const [user, u] of perUser)
    if (u.counted !== u.stored) out.push(`user ${user}: quota counts ${u.counted} bytes, objects hold ${u.stored}`);
  const owned = new Set<string>();
  for (const q of [
    "SELECT object_key AS k FROM files",
    "SELECT object_key AS k FROM file_trash",
    "SELECT object_key AS k FROM uploads",
  ])
    for (const r of await all<{ k: string }>(q)) owned.add(r.k);
  const fileIds = new Set(rows.map((r) => r.id));
  const uploadIds = new Set((await all<{ id: string }>("SELECT id FROM uploads")).map((r) => r.id));
  let cursor: string | undefined;
  do {
    const page = await env.MEDIA.list({ cursor, limit: 1000 });
    for (const o of page.objects) {
      const [prefix, id] = o.key.split("/");
      const ok =
        owned.has(o.key) ||
        (prefix === "r" && (fileIds.has(id!) || owned.has(`f/${id}`))) ||
        (prefix === "u" && uploadIds.has(id!)) ||
        !["f", "r", "u"].includes(prefix!);
      if (!ok) out.push(`object ${o.key} (${o.size} bytes) belongs to no file, upload or trash entry`);
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return out;
}

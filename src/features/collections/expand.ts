/**
 * `?expand=`: the records a record's references name, for a read, a list or a search, in that
 * statement itself: each referenced record if the caller may read it, else `null`; a user reference
 * as the user's public profile `{ id, name, avatarFileId }`.
 */
import { and, eq, getTableColumns, type SQL, sql } from "drizzle-orm";
import { alias, type SQLiteColumn } from "drizzle-orm/sqlite-core";
import type { Principal } from "../../env";
import { accessFilter, type RecordRow, readAccess } from "./access";
import { type Collection, findCollection } from "./registry";

/** The column a row carries an expanded record in (JSON text): names no field can have. */
const expandColumn = (key: string) => `_expand_${key}`;

/**
 * The expands of a read, list or search as columns of its own statement: per row, the referenced record as a
 * JSON object when the caller may read it (a primary-key lookup of the target, under an alias so a
 * collection may reference itself), else NULL. One statement, whatever the number of expands.
 */
export function expandColumns(
  col: Collection,
  p: Principal | null,
  fields: readonly string[],
): Record<string, SQL.Aliased> {
  return Object.fromEntries(
    fields.map((key, i) => {
      const ref = col.table[key]!;
      const target = col.fields[key]!.ref!.target;
      const as = `_x${i}`;
      if (target === "users")
        return [
          expandColumn(key),
          sql<string | null>`(SELECT json_object('id', ${sql.identifier(as)}.id, 'name', ${sql.identifier(as)}.name,
            'avatarFileId', ${sql.identifier(as)}.avatar_file_id) FROM users AS ${sql.identifier(as)}
            WHERE ${sql.identifier(as)}.id = ${ref})`.as(expandColumn(key)),
        ];
      const t = findCollection(target)!;
      const x = alias(t.table, as);
      const acc = readAccess(t, p);
      const columns = Object.values(getTableColumns(x)) as SQLiteColumn[];
      const json = sql.join(
        // Column names are [a-z0-9_] (declared fields, snake_cased): literal keys, no bound values.
        columns.map((c) => sql`${sql.raw(`'${c.name}'`)}, ${c}`),
        sql`, `,
      );
      const readable =
        acc.kind === "denied"
          ? sql`0`
          : accessFilter({ ownerId: x.ownerId, teamId: t.scope === "team" ? x.teamId : undefined }, acc);
      return [
        expandColumn(key),
        sql<string | null>`(SELECT json_object(${json}) FROM ${t.table} AS ${sql.identifier(as)} WHERE ${and(
          eq(x.id, ref),
          readable,
        )})`.as(expandColumn(key)),
      ];
    }),
  );
}

/** Moves each row's expand columns into `expand: { <field>: record | null }`, decoded like the target's rows. */
export function liftExpanded(col: Collection, records: RecordRow[], fields: readonly string[]): void {
  if (fields.length === 0) return;
  const decoders = fields.map((key) => {
    const target = col.fields[key]!.ref!.target;
    if (target === "users") return (o: Record<string, unknown>) => o;
    const columns = Object.entries(getTableColumns(findCollection(target)!.table)) as [string, SQLiteColumn][];
    return (o: Record<string, unknown>) =>
      Object.fromEntries(
        columns.map(([k, c]) => [
          k,
          o[c.name] === null || o[c.name] === undefined ? null : c.mapFromDriverValue(o[c.name]),
        ]),
      );
  });
  for (const rec of records) {
    rec.expand = Object.fromEntries(
      fields.map((key, i) => {
        const raw = rec[expandColumn(key)];
        delete rec[expandColumn(key)];
        return [key, typeof raw === "string" ? decoders[i]!(JSON.parse(raw) as Record<string, unknown>) : null];
      }),
    );
  }
}

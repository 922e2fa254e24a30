/**
 * The full-text index of a collection with `searchable` fields, as SQL: an FTS5 table over those
 * columns (external content: the collection's own table, so the text is stored once), kept in sync
 * by triggers inside every write's own statement (no drift after a crash). Pure (no imports), so
 * `scripts/search-migration.mjs` writes the same SQL into migrations that the server queries.
 */

/** What the index of one collection needs to know. */
export interface SearchSpec {
  /** The collection's table, `app_<name>`. */
  table: string;
  /** The searchable fields' column names (snake_case), in declaration order. */
  columns: string[];
}

/** The FTS5 table of a collection's table. */
export const ftsTable = (table: string) => `${table}_fts`;

/**
 * unicode61 with diacritics folded (`remove_diacritics 2`: "café" matches "cafe"), case-folded;
 * prefix indexes for the last word typed (search-as-you-type) of 2 and 3 characters.
 */
const OPTIONS = "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'";

/**
 * The statements that create the index and its triggers (the caller fills it: `rebuildSql`).
 * @public (scripts/search-migration.mjs)
 */
export function createSearchSql(s: SearchSpec): string[] {
  const fts = ftsTable(s.table);
  const cols = s.columns.join(", ");
  const newCols = s.columns.map((c) => `new.${c}`).join(", ");
  const oldCols = s.columns.map((c) => `old.${c}`).join(", ");
  return [
    `CREATE VIRTUAL TABLE ${fts} USING fts5(${cols}, content = '${s.table}', content_rowid = 'rowid', ${OPTIONS})`,
    `CREATE TRIGGER ${fts}_insert AFTER INSERT ON ${s.table} BEGIN ` +
      `INSERT INTO ${fts} (rowid, ${cols}) VALUES (new.rowid, ${newCols}); END`,
    `CREATE TRIGGER ${fts}_delete AFTER DELETE ON ${s.table} BEGIN ` +
      `INSERT INTO ${fts} (${fts}, rowid, ${cols}) VALUES ('delete', old.rowid, ${oldCols}); END`,
    `CREATE TRIGGER ${fts}_update AFTER UPDATE OF ${cols} ON ${s.table} BEGIN ` +
      `INSERT INTO ${fts} (${fts}, rowid, ${cols}) VALUES ('delete', old.rowid, ${oldCols}); ` +
      `INSERT INTO ${fts} (rowid, ${cols}) VALUES (new.rowid, ${newCols}); END`,
  ];
}

/**
 * Fills (or refills) an index from its table.
 * @public (scripts/search-migration.mjs)
 */
export const rebuildSql = (s: SearchSpec) =>
  `INSERT INTO ${ftsTable(s.table)} (${ftsTable(s.table)}) VALUES ('rebuild')`;

/**
 * The statements that remove an index and its triggers.
 * @public (scripts/search-migration.mjs)
 */
export function dropSearchSql(table: string): string[] {
  const fts = ftsTable(table);
  return [
    `DROP TRIGGER IF EXISTS ${fts}_insert`,
    `DROP TRIGGER IF EXISTS ${fts}_delete`,
    `DROP TRIGGER IF EXISTS ${fts}_update`,
    `DROP TABLE IF EXISTS ${fts}`,
  ];
}

/** A count the server keeps (`field.count`): the parent's column, and the child reference it counts. */
interface CountSpec {
  /** The parent collection's name (its change-log rows) and table, and the count's column. */
  collection: string;
  table: string;
  column: string;
  /** Whether the parent's records carry `team_id` (a team-scoped collection). */
  team: boolean;
  /** The child table and its reference column. */
  childTable: string;
  childColumn: string;
}

/** The name of a count's triggers. */
const countName = (c: CountSpec) => `${c.table}_${c.column}`;

/**
 * The triggers that keep a count: each insert, delete or move of a child changes its parent's count
 * by one, in the child write's own statement, as a new version of the parent with its change-log row
 * (so sync and live data see it).
 * @public (scripts/search-migration.mjs)
 */
export function createCountSql(c: CountSpec): string[] {
  const now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
  const bump = (ref: string, by: string) =>
    `UPDATE ${c.table} SET ${c.column} = ${c.column} ${by}, version = version + 1, updated_at = ${now} ` +
    `WHERE id = ${ref}; ` +
    `DELETE FROM record_changes WHERE collection = '${c.collection}' AND record_id = ${ref}; ` +
    "INSERT INTO record_changes (collection, record_id, owner_id, team_id, version, deleted, changed_at) " +
    `SELECT '${c.collection}', id, owner_id, ${c.team ? "team_id" : "NULL"}, version, 0, updated_at ` +
    `FROM ${c.table} WHERE id = ${ref};`;
  const name = countName(c);
  return [
    `CREATE TRIGGER ${name}_insert AFTER INSERT ON ${c.childTable} WHEN new.${c.childColumn} IS NOT NULL BEGIN ` +
      `${bump(`new.${c.childColumn}`, "+ 1")} END`,
    `CREATE TRIGGER ${name}_delete AFTER DELETE ON ${c.childTable} WHEN old.${c.childColumn} IS NOT NULL BEGIN ` +
      `${bump(`old.${c.childColumn}`, "- 1")} END`,
    `CREATE TRIGGER ${name}_move AFTER UPDATE OF ${c.childColumn} ON ${c.childTable} ` +
      `WHEN old.${c.childColumn} IS NOT new.${c.childColumn} BEGIN ` +
      `${bump(`old.${c.childColumn}`, "- 1")} ${bump(`new.${c.childColumn}`, "+ 1")} END`,
  ];
}

/**
 * Recounts every parent (after the triggers are created: existing children count from the start).
 * @public (scripts/search-migration.mjs)
 */
export const recountSql = (c: CountSpec) =>
  `UPDATE ${c.table} SET ${c.column} = (SELECT count(*) FROM ${c.childTable} AS child ` +
  `WHERE child.${c.childColumn} = ${c.table}.id)`;

/**
 * The statements that remove a count's triggers.
 * @public (scripts/search-migration.mjs)
 */
export const dropCountSql = (table: string, column: string) =>
  ["insert", "delete", "move"].map((t) => `DROP TRIGGER IF EXISTS ${table}_${column}_${t}`);

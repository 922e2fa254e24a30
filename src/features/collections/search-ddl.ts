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

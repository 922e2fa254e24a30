/**
 * The SQL of the event triggers (written into migrations by scripts/search-migration.mjs, which runs
 * in Node: this module imports nothing). Each trigger writes one `events` row in the transaction of
 * the write that fired it, with the row's images as JSON keyed by column name, and only while
 * `event_listeners` names the event or `*`: nobody listening, nothing written.
 */

/** What one table's triggers need: its name, the prefix of its events, the columns its images carry. */
export interface EventSource {
  table: string;
  /** `posts` → `posts.create` … */
  prefix: string;
  columns: readonly string[];
  /** Which events the table raises (collections: all three; `users`: create, delete; `files`: create). */
  kinds: readonly ("create" | "update" | "delete")[];
  /** `files`: a file is created when its row turns `ready`, not when the pending row is written. */
  readyColumn?: string;
}

/**
 * Every table that raises events: each collection (`app_<name>`, all three kinds, every column), and
 * `users` and `files` with the columns hooks and webhooks may see (never a password hash).
 */
export function eventSources(collections: readonly { name: string; columns: readonly string[] }[]): EventSource[] {
  return [
    ...collections.map((c) => ({
      table: `app_${c.name}`,
      prefix: c.name,
      columns: c.columns,
      kinds: ["create", "update", "delete"] as const,
    })),
    {
      table: "users",
      prefix: "users",
      columns: ["id", "email", "email_verified", "name", "anonymous", "locale", "created_at"],
      kinds: ["create", "delete"],
    },
    {
      table: "files",
      prefix: "files",
      columns: ["id", "owner_id", "name", "content_type", "size", "visibility", "team_id", "created_at"],
      kinds: ["create"],
      readyColumn: "status",
    },
  ];
}

const q = (name: string) => `"${name.replaceAll('"', '""')}"`;
const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;
const image = (row: "NEW" | "OLD", columns: readonly string[]) =>
  `json_object(${columns.map((c) => `${lit(c)}, ${row}.${q(c)}`).join(", ")})`;
const listened = (event: string) => `EXISTS (SELECT 1 FROM event_listeners WHERE event IN (${lit(event)}, '*'))`;
const now = `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`;
const triggerName = (s: EventSource, kind: string) => `${s.table}_event_${kind}`;

/** The trigger statements of one table. */
export function createEventTriggersSql(s: EventSource): string[] {
  const insert = (event: string, record: string, previous: string, id: "NEW" | "OLD") =>
    `INSERT INTO events (event, record_id, record, previous, at) VALUES (${lit(event)}, ${id}.id, ${record}, ${previous}, ${now})`;
  const out: string[] = [];
  for (const kind of s.kinds) {
    const event = `${s.prefix}.${kind}`;
    if (kind === "create" && s.readyColumn) {
      const ready = `NEW.${q(s.readyColumn)} = 'ready'`;
      out.push(
        `CREATE TRIGGER ${q(triggerName(s, "create"))} AFTER INSERT ON ${q(s.table)} WHEN ${ready} AND ${listened(event)} BEGIN ${insert(event, image("NEW", s.columns), "NULL", "NEW")}; END`,
        `CREATE TRIGGER ${q(triggerName(s, "ready"))} AFTER UPDATE OF ${q(s.readyColumn)} ON ${q(s.table)} WHEN ${ready} AND OLD.${q(s.readyColumn)} <> 'ready' AND ${listened(event)} BEGIN ${insert(event, image("NEW", s.columns), "NULL", "NEW")}; END`,
      );
      continue;
    }
    const when = `WHEN ${listened(event)}`;
    if (kind === "create")
      out.push(
        `CREATE TRIGGER ${q(triggerName(s, kind))} AFTER INSERT ON ${q(s.table)} ${when} BEGIN ${insert(event, image("NEW", s.columns), "NULL", "NEW")}; END`,
      );
    if (kind === "update")
      out.push(
        `CREATE TRIGGER ${q(triggerName(s, kind))} AFTER UPDATE ON ${q(s.table)} ${when} BEGIN ${insert(event, image("NEW", s.columns), image("OLD", s.columns), "NEW")}; END`,
      );
    if (kind === "delete")
      out.push(
        `CREATE TRIGGER ${q(triggerName(s, kind))} AFTER DELETE ON ${q(s.table)} ${when} BEGIN ${insert(event, "NULL", image("OLD", s.columns), "OLD")}; END`,
      );
  }
  return out;
}

/** Removes what `createEventTriggersSql` made for `table` (every trigger name it may have used). */
export function dropEventTriggersSql(table: string): string[] {
  return ["create", "ready", "update", "delete"].map((k) => `DROP TRIGGER IF EXISTS ${q(`${table}_event_${k}`)}`);
}

/** The `hook` listener rows: exactly the events the app declares after hooks for. */
export function hookListenersSql(events: readonly string[]): string[] {
  return [
    `DELETE FROM event_listeners WHERE source = 'hook'`,
    ...(events.length
      ? [`INSERT INTO event_listeners (event, source) VALUES ${events.map((e) => `(${lit(e)}, 'hook')`).join(", ")}`]
      : []),
  ];
}

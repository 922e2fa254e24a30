/**
 * An `events` row as hooks and webhooks see it: the triggers store each image as JSON keyed by
 * column name, and each column maps its stored value back the way a read does (booleans, arrays,
 * field names), so an event's record has exactly the shape the API returns.
 */
import { getTableColumns, type Table } from "drizzle-orm";
import { files, users } from "../../db/schema";
import { findCollection } from "../collections";
import type { EventRecord, OutpostEvent } from "../logic";

type Mapper = Map<string, { key: string; map: (v: unknown) => unknown }>;
const mappers = new Map<string, Mapper | null>();

function mapperOf(table: Table): Mapper {
  return new Map(
    Object.entries(getTableColumns(table)).map(([key, col]) => [
      col.name,
      { key, map: (v: unknown) => (v === null ? null : col.mapFromDriverValue(v)) },
    ]),
  );
}

/** The column mapping of an event's source (a collection, `users`, `files`), or null if unknown now. */
function mapperFor(event: string): Mapper | null {
  const source = event.slice(0, event.lastIndexOf("."));
  if (!mappers.has(source)) {
    const table = source === "users" ? users : source === "files" ? files : findCollection(source)?.table;
    mappers.set(source, table ? mapperOf(table) : null);
  }
  return mappers.get(source)!;
}

/** One image (a JSON object keyed by column name) in the API's shape. */
function shapeImage(event: string, json: string | null): EventRecord | null {
  if (json === null) return null;
  const stored = JSON.parse(json) as Record<string, unknown>;
  const mapper = mapperFor(event);
  if (!mapper) return stored;
  const out: EventRecord = {};
  for (const [column, value] of Object.entries(stored)) {
    const m = mapper.get(column);
    if (m) out[m.key] = m.map(value);
  }
  return out;
}

/** A stored `events` row, shaped. */
export function shapeEvent(row: {
  seq: number;
  event: string;
  recordId: string;
  record: string | null;
  previous: string | null;
  at: string;
}): OutpostEvent {
  return {
    seq: row.seq,
    event: row.event,
    recordId: row.recordId,
    record: shapeImage(row.event, row.record),
    previous: shapeImage(row.event, row.previous),
    at: row.at,
  };
}

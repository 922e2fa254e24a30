/** The declared collections by name, from src/app/collections.ts through the app registry. */
import { appCollections } from "../../registry";
import { COLLECTION, type CollectionMeta, type CollectionTable, isCollection } from "./define";

/** A declared collection: its table and its metadata. */
export interface Collection extends CollectionMeta {
  readonly table: CollectionTable;
}

export const collections: readonly Collection[] = Object.values(appCollections)
  .filter(isCollection)
  .map((table) => ({ ...table[COLLECTION], table }));

const byName = new Map(collections.map((c) => [c.name, c]));
if (byName.size !== collections.length) throw new Error("two collections share a name");
for (const c of collections)
  for (const [key, f] of Object.entries(c.fields)) {
    if (!f.ref) continue;
    if (f.ref.target !== "users" && !byName.has(f.ref.target))
      throw new Error(`collection "${c.name}": field "${key}" references "${f.ref.target}", which is not declared`);
    // An account's deletion cannot be refused (app stores require it).
    if (f.ref.target === "users" && f.ref.onDelete === "restrict")
      throw new Error(`collection "${c.name}": field "${key}" references users: use onDelete "cascade" or "setNull"`);
  }

for (const c of collections)
  for (const [key, f] of Object.entries(c.fields)) {
    if (!f.count) continue;
    const of = byName.get(f.count.of);
    if (of?.fields[f.count.by]?.ref?.target !== c.name)
      throw new Error(
        `collection "${c.name}": field "${key}" counts ${f.count.of}.${f.count.by}, which is not a reference to ${c.name}`,
      );
  }

/** Every reference to collection `target` (or `users`): the referencing collection, field and rule. */
export const referencesTo = (target: string) =>
  collections.flatMap((c) =>
    Object.entries(c.fields).flatMap(([key, f]) =>
      f.ref?.target === target ? [{ col: c, key, onDelete: f.ref.onDelete }] : [],
    ),
  );

export const findCollection = (name: string): Collection | undefined => byName.get(name);

const raised = new Map<string, readonly string[]>();

/**
 * Every event a write of `op` to collection `name` can raise in its batch: its own, the `update` of
 * each record keeping a count of it (`field.count`), and for a delete what its references do to
 * their referrers (cascaded deletes, nulled fields), all the way down. The write's change-log row
 * asks whether anyone listens to any of them (`event_listeners`), so a write nobody listens to
 * sends nothing after it.
 */
export function raisedEvents(name: string, op: "create" | "update" | "delete"): readonly string[] {
  const key = `${name}.${op}`;
  const known = raised.get(key);
  if (known) return known;
  const out = new Set<string>([key]);
  raised.set(key, [...out]); // a reference cycle (comments → comments) stops here
  for (const c of collections) if (c.counts.some((k) => k.of === name)) out.add(`${c.name}.update`);
  if (op === "delete")
    for (const r of referencesTo(name))
      for (const e of raisedEvents(r.col.name, r.onDelete === "cascade" ? "delete" : "update")) out.add(e);
  const list = [...out].sort();
  raised.set(key, list);
  return list;
}

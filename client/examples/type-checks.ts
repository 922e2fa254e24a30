// Compile-time checks of the generated types (tsc -p examples): each line marked as an expected
// error below must stay an error, or the type check fails.
import { createClient } from "@outpost/client";
import type { Collections } from "./outpost-types.ts";

const client = createClient<Collections>({ url: "http://localhost" });
const notes = client.collection("notes");

export async function checks(): Promise<void> {
  const n = await notes.create({ title: "ok" });
  const title: string = n.title;
  const version: number = n.version;
  await notes.update(n.id, { pinned: true });
  notes.watch(
    { where: { title: { $contains: "x" }, createdAt: { $gte: "2026-01-01" } }, sort: "-updatedAt" },
    (s) => s.items[0]?.tags,
  );
  void [title, version];

  // @ts-expect-error an unknown collection
  client.collection("nope");
  // @ts-expect-error title is required
  await notes.create({ body: "no title" });
  // @ts-expect-error wrong field type
  await notes.update(n.id, { pinned: "yes" });
  // @ts-expect-error unknown field in where
  await notes.query({ where: { colour: "red" } });
  // @ts-expect-error arrays are filtered with $contains only
  await notes.query({ where: { tags: ["a"] } });
  // @ts-expect-error booleans have no ranges
  await notes.query({ where: { pinned: { $gt: false } } });
  // @ts-expect-error arrays cannot be sorted on
  await notes.query({ sort: "tags" });
  // @ts-expect-error not a field
  await notes.query({ sort: "-colour" });
}

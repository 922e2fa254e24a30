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

export const findCollection = (name: string): Collection | undefined => byName.get(name);

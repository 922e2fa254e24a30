/**
 * The rule language of team-scoped collections: what a declaration may say, how a caller's rules
 * resolve (lists of rules, several actions that must all allow), and the same answer on a row read
 * back (`visible`) and on a team hub's socket (`teamSocketFilter`).
 */
import { describe, expect, it } from "vitest";
import type { TeamRole } from "../../../src/db/schema";
import type { Principal } from "../../../src/env";
import { access, visible } from "../../../src/features/collections/access";
import { COLLECTION, collection, field, type Rules } from "../../../src/features/collections/define";
import { teamSocketFilter } from "../../../src/features/collections/hub-scope";
import type { Collection } from "../../../src/features/collections/registry";

const user: Principal = { kind: "user", userId: "me", sessionId: "s", anonymous: false };
const ROLES: TeamRole[] = ["viewer", "member", "admin", "owner"];

let n = 0;
function declare(rules: Partial<Rules>, scope: "owner" | "team" = "team"): Collection {
  const table = collection(`rules_${++n}`, {
    scope,
    fields: { text: field.string() },
    rules: {
      read: "team:viewer",
      list: "team:viewer",
      create: "team:member",
      update: "team:member",
      ...rules,
    } as Rules,
  });
  return { ...table[COLLECTION], table };
}

describe("team rules: declarations", () => {
  it("refuses what cannot mean anything", () => {
    expect(() => declare({ read: "authenticated" })).toThrow(/would reach outside the team/);
    expect(() => declare({ read: "public" })).toThrow(/would reach outside the team/);
    expect(() => declare({ delete: [] })).toThrow(/empty list/);
    expect(() => declare({ delete: ["none", "team:admin"] })).toThrow(/"none" cannot be listed/);
    expect(() =>
      declare(
        { read: "team:viewer", list: "owner", create: "authenticated", update: "owner", delete: "owner" },
        "owner",
      ),
    ).toThrow(/needs scope: "team"/);
  });
});

describe("team rules: who may, by role and authorship", () => {
  /** Every (role, is the record's owner) pair the resolved access admits. */
  const admitted = (col: Collection, actions: Parameters<typeof access>[1]) => {
    const acc = access(col, actions, user);
    return ROLES.flatMap((role) =>
      [false, true]
        .filter((own) => visible(acc, { ownerId: own ? "me" : "someone", role }))
        .map((own) => `${role}${own ? "+author" : ""}`),
    );
  };

  it('["owner", "team:admin"]: the author while a member, or admins and the owner', () => {
    const col = declare({ delete: ["owner", "team:admin"] });
    expect(admitted(col, "delete")).toEqual([
      "viewer+author",
      "member+author",
      "admin",
      "admin+author",
      "owner",
      "owner+author",
    ]);
    // Deleting also needs reading (team:viewer): the same set.
    expect(admitted(col, ["read", "delete"])).toEqual(admitted(col, "delete"));
  });

  it("both actions must allow: update team:member ∧ read [owner, team:admin] = authors who are members, or admins", () => {
    const col = declare({ read: ["owner", "team:admin"], update: "team:member" });
    expect(admitted(col, ["read", "update"])).toEqual([
      "member+author",
      "admin",
      "admin+author",
      "owner",
      "owner+author",
    ]);
  });

  it("team:owner alone, and 'none': only the team's owner; nobody but the service key", () => {
    expect(admitted(declare({ delete: "team:owner" }), "delete")).toEqual(["owner", "owner+author"]);
    const none = declare({ delete: "none" });
    expect(access(none, "delete", user)).toEqual({ kind: "denied" });
    expect(access(none, "delete", { kind: "service" })).toEqual({ kind: "all" });
    expect(() => access(none, "read", null)).toThrow(/Authorization/);
  });

  it("a team hub's socket sees what its user may list, tombstones included", () => {
    const col = declare({ list: ["owner", "team:admin"] });
    const items = [
      { seq: 1, item: { id: "a", ownerId: "me", version: 1 }, ownerId: "me" },
      { seq: 2, item: { id: "b", deleted: true as const, version: 2 }, ownerId: "someone" },
    ];
    const seen = (role: TeamRole) => items.filter(teamSocketFilter(col, { userId: "me", role })).map((x) => x.item.id);
    expect(seen("member")).toEqual(["a"]);
    expect(seen("admin")).toEqual(["a", "b"]);
  });
});

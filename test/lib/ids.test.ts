import { describe, expect, it } from "vitest";
import { isId, newId } from "../../src/lib/ids";

describe("newId", () => {
  it("is a UUIDv7 (RFC 9562): the time in its first 48 bits, version 7, variant 10", () => {
    const now = Date.UTC(2026, 11, 7, 12, 0, 0, 123);
    const id = newId(now);
    expect(isId(id)).toBe(true);
    expect(Number.parseInt(id.replace(/-/g, "").slice(0, 12), 16)).toBe(now);
    expect(id[14]).toBe("7");
    expect("89ab").toContain(id[19]);
  });

  it("sorts by creation time and does not repeat", () => {
    const ids = Array.from({ length: 2000 }, (_, i) => newId(1_700_000_000_000 + i));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    // Within one millisecond the random part differs.
    const same = Array.from({ length: 2000 }, () => newId(1_700_000_000_000));
    expect(new Set(same).size).toBe(same.length);
  });
});

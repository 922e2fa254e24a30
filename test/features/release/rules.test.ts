/** Remote config rules: each condition, their order, stable rollouts, and version comparison. */
import { describe, expect, it } from "vitest";
import { type Caller, matches, type Rule, resolve, rolloutBucket } from "../../../src/features/release/rules";
import { compareVersions, parseClient, parseVersion } from "../../../src/features/release/semver";

const caller = (over: Partial<Caller> = {}): Caller => ({
  client: parseClient("ios/2.3.1"),
  country: "DE",
  userId: "u1",
  installId: null,
  role: "user",
  teamIds: ["t1"],
  ...over,
});

const cmp = (a: string, b: string) => Math.sign(compareVersions(parseVersion(a)!, parseVersion(b)!));

describe("version comparison", () => {
  it("orders numerically, not as text", () => {
    expect(cmp("2.10.0", "2.9.9")).toBe(1);
    expect(cmp("1.10", "1.9.12")).toBe(1);
    expect(cmp("10.0.0", "9.99.99")).toBe(1);
  });
  it("treats missing parts as zero and ignores build metadata", () => {
    expect(cmp("2.3", "2.3.0")).toBe(0);
    expect(cmp("2", "2.0.0")).toBe(0);
    expect(cmp("1.0.0+build.5", "1.0.0+other")).toBe(0);
  });
  it("puts pre-releases below their release, in semver order", () => {
    expect(cmp("1.0.0-beta", "1.0.0")).toBe(-1);
    expect(cmp("1.0.0-beta.2", "1.0.0-beta.1")).toBe(1);
    expect(cmp("1.0.0-beta.10", "1.0.0-beta.9")).toBe(1);
    expect(cmp("1.0.0-alpha", "1.0.0-alpha.1")).toBe(-1);
    expect(cmp("1.0.0-alpha.1", "1.0.0-alpha.beta")).toBe(-1);
    expect(cmp("1.0.0-rc.1", "1.0.0-beta.11")).toBe(1);
    expect(cmp("1.0.1-alpha", "1.0.0")).toBe(1);
  });
  it("refuses malformed versions", () => {
    for (const bad of [
      "",
      "v1.2.3",
      "1.2.3.4",
      "1..2",
      "1.2.x",
      "-1.0.0",
      "1.0.0-",
      "1.0.0-beta..1",
      "latest",
      "1.0.0 ",
    ])
      expect(parseVersion(bad), bad).toBeNull();
  });
  it("reads Outpost-Client as platform and version", () => {
    expect(parseClient("iOS/2.3.1")).toEqual({ platform: "ios", version: parseVersion("2.3.1") });
    expect(parseClient("android/garbage")).toEqual({ platform: "android", version: null });
    expect(parseClient("ios")).toBeNull();
    expect(parseClient(undefined)).toBeNull();
  });
});

describe("rule conditions", () => {
  const holds = (when: Rule["when"], c: Caller = caller()) => matches("k", when, c);

  it("platform", () => {
    expect(holds({ platform: "ios" })).toBe(true);
    expect(holds({ platform: "android" })).toBe(false);
    expect(holds({ platform: "ios" }, caller({ client: null }))).toBe(false);
  });
  it("app version range, inclusive at both ends", () => {
    expect(holds({ minAppVersion: "2.3.1" })).toBe(true);
    expect(holds({ minAppVersion: "2.3.2" })).toBe(false);
    expect(holds({ maxAppVersion: "2.3.1" })).toBe(true);
    expect(holds({ maxAppVersion: "2.3.1-beta" })).toBe(false);
    expect(holds({ minAppVersion: "2.0.0", maxAppVersion: "2.10.0" })).toBe(true);
    // No version (no header, or a malformed one): a version condition does not hold.
    expect(holds({ minAppVersion: "0.0.1" }, caller({ client: parseClient("ios/abc") }))).toBe(false);
  });
  it("country, one or several", () => {
    expect(holds({ country: "DE" })).toBe(true);
    expect(holds({ country: ["FR", "DE"] })).toBe(true);
    expect(holds({ country: "FR" })).toBe(false);
    expect(holds({ country: "DE" }, caller({ country: null }))).toBe(false);
  });
  it("signed in or not", () => {
    expect(holds({ signedIn: true })).toBe(true);
    expect(holds({ signedIn: false })).toBe(false);
    expect(holds({ signedIn: false }, caller({ userId: null }))).toBe(true);
  });
  it("role and team", () => {
    expect(holds({ role: "user" })).toBe(true);
    expect(holds({ role: "admin" })).toBe(false);
    expect(holds({ teamId: "t1" })).toBe(true);
    expect(holds({ teamId: "t2" })).toBe(false);
    expect(holds({ role: "user" }, caller({ userId: null, role: null, teamIds: [] }))).toBe(false);
  });
  it("every condition of a rule must hold", () => {
    expect(holds({ platform: "ios", country: "DE", signedIn: true })).toBe(true);
    expect(holds({ platform: "ios", country: "FR", signedIn: true })).toBe(false);
  });
  it("the first matching rule wins, else the value", () => {
    const rules: Rule[] = [
      { when: { platform: "android" }, value: "android" },
      { when: { country: "DE" }, value: "germany" },
      { when: { platform: "ios" }, value: "ios" },
    ];
    expect(resolve("k", "base", rules, caller())).toBe("germany");
    expect(resolve("k", "base", rules, caller({ country: "US" }))).toBe("ios");
    expect(resolve("k", "base", rules, caller({ country: "US", client: null }))).toBe("base");
  });
});

describe("percentage rollouts", () => {
  const ids = Array.from({ length: 10_000 }, (_, i) => `user-${i}-${(i * 7919) % 104729}`);

  for (const percent of [1, 10, 25, 50, 90])
    it(`${percent} % of 10,000 ids, within 2 points`, () => {
      const inside = ids.filter((id) => matches("feed.pageSize", { percent }, caller({ userId: id }))).length;
      expect(Math.abs((inside / ids.length) * 100 - percent)).toBeLessThanOrEqual(2);
    });

  it("is stable per user, and growing the percentage only adds users", () => {
    const at = (percent: number) =>
      new Set(ids.filter((id) => matches("chat.enabled", { percent }, caller({ userId: id }))));
    const [ten, fifty, all] = [at(10), at(50), at(100)];
    expect(at(10)).toEqual(ten);
    for (const id of ten) expect(fifty.has(id)).toBe(true);
    expect(all.size).toBe(ids.length);
    expect(at(0).size).toBe(0);
  });

  it("differs between keys, and uses the install id without a user", () => {
    const a = ids.filter((id) => rolloutBucket("a", id) < 50);
    const b = ids.filter((id) => rolloutBucket("b", id) < 50);
    expect(a).not.toEqual(b);
    const anon = caller({ userId: null, installId: "install-1234" });
    expect(matches("a", { percent: 50 }, anon)).toBe(rolloutBucket("a", "install-1234") < 50);
    expect(matches("a", { percent: 50 }, caller({ userId: null, installId: null }))).toBe(false);
  });
});

/**
 * iOS App Attest: a valid attestation, then assertions with a growing counter; refused: a wrong
 * app id, nonce, aaguid or key id, a chain not from the configured root, an expired or replayed
 * challenge, a counter that does not grow, an unknown key.
 */
import { describe, expect, it, vi } from "vitest";
import { expectProblem } from "../../helpers/api";
import {
  AAGUID_DEV,
  APP_ID,
  assertion,
  attestation,
  call,
  certificate,
  challenge,
  device,
  ecPair,
  NONCE_OID,
  testCa,
  type Vars,
} from "./fixtures";

const ca = await testCa();
const vars: Vars = { APPLE_APP_ATTEST_ROOT: ca.rootPem, APPLE_APP_ATTEST_APP_IDS: `OTHER.app,${APP_ID}` };
const post = (body: object, v: Vars = vars) => call("/v1/app-check/apple", { body, vars: v });

async function attested() {
  const dev = await device();
  const c = await challenge();
  const res = await post({ keyId: dev.keyId, attestation: await attestation(ca, dev, c), challenge: c });
  expect(res.status, res.text).toBe(200);
  return { dev, res };
}

describe("App Attest: attestation", () => {
  it("a valid attestation gets a token for an hour, and the key is stored", async () => {
    const { res } = await attested();
    expect(res.body.token).toMatch(/^ey/);
    const ttl = Date.parse(res.body.expiresAt) - Date.now();
    expect(ttl).toBeGreaterThan(3500_000);
    expect(ttl).toBeLessThanOrEqual(3600_000);
  });

  it("a development build (aaguid appattestdevelop) is accepted too", async () => {
    const dev = await device();
    const c = await challenge();
    const res = await post({
      keyId: dev.keyId,
      attestation: await attestation(ca, dev, c, { aaguid: AAGUID_DEV }),
      challenge: c,
    });
    expect(res.status, res.text).toBe(200);
  });

  const refusals: [string, (d: Awaited<ReturnType<typeof device>>, c: string) => Promise<object>, RegExp][] = [
    [
      "a wrong app id",
      async (d, c) => ({
        keyId: d.keyId,
        attestation: await attestation(ca, d, c, { appId: "EVIL.app" }),
        challenge: c,
      }),
      /app id/,
    ],
    [
      "a wrong nonce",
      async (d, c) => ({
        keyId: d.keyId,
        attestation: await attestation(ca, d, c, { nonceChallenge: "other" }),
        challenge: c,
      }),
      /nonce/,
    ],
    [
      "a counter that is not 0",
      async (d, c) => ({ keyId: d.keyId, attestation: await attestation(ca, d, c, { counter: 1 }), challenge: c }),
      /counter/,
    ],
    [
      "an unknown aaguid",
      async (d, c) => ({
        keyId: d.keyId,
        attestation: await attestation(ca, d, c, { aaguid: new Uint8Array(16) }),
        challenge: c,
      }),
      /aaguid/,
    ],
    [
      "another key's id",
      async (d, c) => ({ keyId: (await device()).keyId, attestation: await attestation(ca, d, c), challenge: c }),
      /key id/,
    ],
    ["not CBOR", async (d, c) => ({ keyId: d.keyId, attestation: "AAAA", challenge: c }), /CBOR/],
  ];
  for (const [name, body, detail] of refusals) {
    it(`refuses ${name}`, async () => {
      const c = await challenge();
      const res = await post(await body(await device(), c));
      expect(expectProblem(res, 401, "app_check_failed").detail).toMatch(detail);
    });
  }

  it("refuses a chain from another CA, and a leaf signed straight by an untrusted key", async () => {
    const other = await testCa();
    const dev = await device();
    const c = await challenge();
    const res = await post({ keyId: dev.keyId, attestation: await attestation(other, dev, c), challenge: c });
    expect(expectProblem(res, 401, "app_check_failed").detail).toMatch(/chain/);
    // The real root in the configuration (the default var) refuses the test CA's chain too.
    const c2 = await challenge();
    const real = await post(
      { keyId: dev.keyId, attestation: await attestation(ca, dev, c2), challenge: c2 },
      { APPLE_APP_ATTEST_APP_IDS: APP_ID },
    );
    expect(expectProblem(real, 401, "app_check_failed").detail).toMatch(/chain/);
  });

  it("refuses an expired intermediate", async () => {
    const dev = await device();
    const c = await challenge();
    const old = await certificate("Old CA", await ecPair("P-384"), ca.root, { notAfter: Date.now() - 1000 });
    const leaf = await certificate(dev.keyId, dev.pair, old, { extensions: [[NONCE_OID, new Uint8Array([0x30, 0])]] });
    const res = await post({
      keyId: dev.keyId,
      attestation: await attestation(ca, dev, c, { chain: [leaf.der, old.der] }),
      challenge: c,
    });
    expect(expectProblem(res, 401, "app_check_failed").detail).toMatch(/not valid now/);
  });

  it("a challenge works once: replayed, unknown or expired it is refused", async () => {
    const dev = await device();
    const c = await challenge();
    const att = await attestation(ca, dev, c);
    expect((await post({ keyId: dev.keyId, attestation: att, challenge: c })).status).toBe(200);
    const replay = await post({ keyId: dev.keyId, attestation: att, challenge: c });
    expect(expectProblem(replay, 401, "app_check_failed").detail).toMatch(/challenge/);
    const unknown = await post({ keyId: dev.keyId, attestation: att, challenge: "never-issued" });
    expectProblem(unknown, 401, "app_check_failed");
    const late = await challenge();
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(Date.now() + 5 * 60_000 + 1000);
      const expired = await post({ keyId: dev.keyId, attestation: await attestation(ca, dev, late), challenge: late });
      expect(expectProblem(expired, 401, "app_check_failed").detail).toMatch(/challenge/);
    } finally {
      vi.useRealTimers();
    }
  });

  it("needs exactly one of attestation and assertion", async () => {
    const c = await challenge();
    const res = await post({ keyId: "abc", challenge: c });
    expectProblem(res, 400, "validation_failed");
  });
});

describe("App Attest: assertions", () => {
  it("later requests prove themselves with assertions whose counter grows", async () => {
    const { dev } = await attested();
    for (const counter of [1, 2, 5]) {
      const c = await challenge();
      const res = await post({ keyId: dev.keyId, assertion: await assertion(dev, c, counter), challenge: c });
      expect(res.status, res.text).toBe(200);
      expect(res.body.token).toMatch(/^ey/);
    }
    // The same counter again, or a lower one: refused.
    for (const counter of [5, 3]) {
      const c = await challenge();
      const res = await post({ keyId: dev.keyId, assertion: await assertion(dev, c, counter), challenge: c });
      expect(expectProblem(res, 401, "app_check_failed").detail).toMatch(/counter/);
    }
  });

  it("refuses another key's signature, another challenge, another app id, an unknown key", async () => {
    const { dev } = await attested();
    const other = await device();
    let c = await challenge();
    const forged = await post({ keyId: dev.keyId, assertion: await assertion(other, c, 10), challenge: c });
    expect(expectProblem(forged, 401, "app_check_failed").detail).toMatch(/signature/);
    c = await challenge();
    const c2 = await challenge();
    const wrongChallenge = await post({ keyId: dev.keyId, assertion: await assertion(dev, c2, 11), challenge: c });
    expect(expectProblem(wrongChallenge, 401, "app_check_failed").detail).toMatch(/signature/);
    c = await challenge();
    const wrongApp = await post({
      keyId: dev.keyId,
      assertion: await assertion(dev, c, 12, "OTHER.app"),
      challenge: c,
    });
    expect(expectProblem(wrongApp, 401, "app_check_failed").detail).toMatch(/app id/);
    c = await challenge();
    const unknown = await post({ keyId: other.keyId, assertion: await assertion(other, c, 1), challenge: c });
    expect(expectProblem(unknown, 401, "app_check_failed").detail).toMatch(/never attested/);
  });
});

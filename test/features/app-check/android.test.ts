/**
 * Android Play Integrity, decrypted and verified here with the app's (test) keys: a good verdict
 * gets a token; each bad verdict, a wrong package or certificate, a stale or foreign nonce, or a
 * token under other keys is refused.
 */
import { describe, expect, it } from "vitest";
import { expectProblem } from "../../helpers/api";
import { b64, CERT_DIGEST, call, challenge, integrityToken, PACKAGE, playKeys, type Vars, verdict } from "./fixtures";

const keys = await playKeys();
const hexDigest = [...CERT_DIGEST].map((x) => x.toString(16).padStart(2, "0").toUpperCase()).join(":");
const vars: Vars = { ...keys.vars, ANDROID_PACKAGE_NAMES: `other.app,${PACKAGE}`, ANDROID_CERT_DIGESTS: hexDigest };
const post = (body: object, v: Vars = vars) => call("/v1/app-check/android", { body, vars: v });

type Verdict = ReturnType<typeof verdict>;
async function send(bend: (v: Verdict) => void = () => {}, k = keys) {
  const c = await challenge();
  const v = verdict(c);
  bend(v);
  return post({ integrityToken: await integrityToken(k, v), challenge: c });
}

describe("Play Integrity", () => {
  it("a good verdict gets a token (certificate digest configured as hex with colons)", async () => {
    const res = await send();
    expect(res.status, res.text).toBe(200);
    expect(res.body.token).toMatch(/^ey/);
    // The same digest configured as base64url, as the verdict carries it, works too.
    const c = await challenge();
    const alt = { ...vars, ANDROID_CERT_DIGESTS: b64(CERT_DIGEST).replaceAll("+", "-").replaceAll("/", "_") };
    const ok = await post({ integrityToken: await integrityToken(keys, verdict(c)), challenge: c }, alt);
    expect(ok.status, ok.text).toBe(200);
  });

  const bad: [string, (v: Verdict) => void, RegExp][] = [
    [
      "an app Play does not recognize",
      (v) => (v.appIntegrity.appRecognitionVerdict = "UNRECOGNIZED_VERSION"),
      /recognized/,
    ],
    ["an unevaluated app", (v) => (v.appIntegrity.appRecognitionVerdict = "UNEVALUATED"), /recognized/],
    ["a device without integrity", (v) => (v.deviceIntegrity.deviceRecognitionVerdict = []), /device/],
    [
      "a device with basic integrity only",
      (v) => (v.deviceIntegrity.deviceRecognitionVerdict = ["MEETS_BASIC_INTEGRITY"]),
      /device/,
    ],
    ["an unlicensed install", (v) => (v.accountDetails.appLicensingVerdict = "UNLICENSED"), /licensed/],
    [
      "a wrong package",
      (v) => {
        v.requestDetails.requestPackageName = "com.evil.app";
        v.appIntegrity.packageName = "com.evil.app";
      },
      /package/,
    ],
    ["an app package unlike the request's", (v) => (v.appIntegrity.packageName = "other.app"), /package/],
    ["a wrong certificate digest", (v) => (v.appIntegrity.certificateSha256Digest = ["AAAA"]), /certificate/],
    ["a stale timestamp", (v) => (v.requestDetails.timestampMillis = String(Date.now() - 6 * 60_000)), /fresh/],
    [
      "a timestamp from the future",
      (v) => (v.requestDetails.timestampMillis = String(Date.now() + 5 * 60_000)),
      /fresh/,
    ],
    ["a wrong nonce", (v) => (v.requestDetails.nonce = "another-nonce"), /nonce/],
  ];
  for (const [name, bend, detail] of bad) {
    it(`refuses ${name}`, async () => {
      expect(expectProblem(await send(bend), 401, "app_check_failed").detail).toMatch(detail);
    });
  }

  it("refuses a token under another app's keys, and garbage", async () => {
    const other = await playKeys();
    expect(expectProblem(await send(undefined, other), 401, "app_check_failed").detail).toMatch(/decrypt or verify/);
    // Encrypted with our key but signed by another: the signature fails.
    const mixed = { ...other, aes: keys.aes };
    expectProblem(await send(undefined, mixed), 401, "app_check_failed");
    const c = await challenge();
    expectProblem(await post({ integrityToken: "a.b.c.d.e", challenge: c }), 401, "app_check_failed");
  });

  it("a refused proof leaves its challenge (and D1) untouched: a good proof may follow with it", async () => {
    const c = await challenge();
    const bad = verdict(c);
    bad.accountDetails.appLicensingVerdict = "UNLICENSED";
    expectProblem(
      await post({ integrityToken: await integrityToken(keys, bad), challenge: c }),
      401,
      "app_check_failed",
    );
    const good = await post({ integrityToken: await integrityToken(keys, verdict(c)), challenge: c });
    expect(good.status, good.text).toBe(200);
  });

  it("the challenge is spent by the first success, and a server without keys refuses", async () => {
    const c = await challenge();
    const token = await integrityToken(keys, verdict(c));
    expect((await post({ integrityToken: token, challenge: c })).status).toBe(200);
    expectProblem(await post({ integrityToken: token, challenge: c }), 401, "app_check_failed");
    const c2 = await challenge();
    const none = await post({ integrityToken: await integrityToken(keys, verdict(c2)), challenge: c2 }, {});
    expect(expectProblem(none, 401, "app_check_failed").detail).toMatch(/no Play Integrity keys/);
  });
});

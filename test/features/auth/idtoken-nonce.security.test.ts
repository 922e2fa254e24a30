/**
 * ID-token nonces (API.md v1.1): Apple tokens carry SHA-256(nonce) (hex) and the client sends the
 * raw nonce; sending the hash itself is refused (a stolen token would otherwise replay with its own
 * claim). Google tokens carry the nonce as sent.
 */
import { describe, expect, it } from "vitest";
import { hex, sha256 } from "../../../src/lib/crypto";
import { api, expectProblem } from "../../helpers/api";
import { providerIdToken } from "../../helpers/tokens";

const sha256Hex = async (s: string) => hex(await sha256(s));
const apple = (nonceClaim: string) =>
  providerIdToken("apple", { sub: `a-${crypto.randomUUID()}`, aud: "com.example.outpost", nonce: nonceClaim });
const google = (nonceClaim: string) =>
  providerIdToken("google", { sub: `g-${crypto.randomUUID()}`, aud: "web-client-id", nonce: nonceClaim });
const signIn = (provider: "apple" | "google", idToken: string, nonce?: string) =>
  api("/v1/auth/idtoken", { body: { provider, idToken, ...(nonce !== undefined ? { nonce } : {}) } });

describe("ID-token nonces", () => {
  it("Apple: the raw nonce matching the token's SHA-256 claim is accepted", async () => {
    const raw = `raw-${crypto.randomUUID()}`;
    expect((await signIn("apple", await apple(await sha256Hex(raw)), raw)).status).toBe(200);
  });

  it("Apple: sending the hash itself (the claim as found in a stolen token) is refused", async () => {
    const hashed = await sha256Hex(`raw-${crypto.randomUUID()}`);
    expectProblem(await signIn("apple", await apple(hashed), hashed), 401, "unauthorized");
  });

  it("Apple: a token whose claim is the raw nonce (not hashed) is refused", async () => {
    const raw = `raw-${crypto.randomUUID()}`;
    expectProblem(await signIn("apple", await apple(raw), raw), 401, "unauthorized");
  });

  it("Google: the nonce as sent is accepted; a token carrying SHA-256 of the sent nonce is refused", async () => {
    const raw = `raw-${crypto.randomUUID()}`;
    expect((await signIn("google", await google(raw), raw)).status).toBe(200);
    expectProblem(await signIn("google", await google(await sha256Hex(raw)), raw), 401, "unauthorized");
  });

  it("a nonce claim without a nonce sent, or a nonce sent for a token without one, is refused", async () => {
    const raw = `raw-${crypto.randomUUID()}`;
    expectProblem(await signIn("apple", await apple(await sha256Hex(raw))), 401, "unauthorized");
    expectProblem(await signIn("google", await google(raw)), 401, "unauthorized");
    const noClaim = await providerIdToken("google", { sub: `g-${crypto.randomUUID()}`, aud: "web-client-id" });
    expectProblem(await signIn("google", noClaim, raw), 401, "unauthorized");
  });
});

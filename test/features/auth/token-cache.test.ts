/**
 * Issue 14 (request overhead): an access token this isolate already verified is not verified
 * again on the next request (no second HMAC), but the cache changes nothing about what is
 * accepted: it expires with the token, only the very same token string hits, and another secret
 * never sees it.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { getConfig } from "../../../src/config";
import { verifyAccessToken } from "../../../src/features/auth/tokens";
import { signWithServerKey, tamperPayload } from "../../helpers/tokens";

const claims = (sub: string) => ({ sub, sid: crypto.randomUUID(), anon: false });

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("verified access tokens are kept while they are valid", () => {
  it("a second request with the same token does not run the HMAC again", async () => {
    const cfg = getConfig(env);
    const token = await signWithServerKey(claims("user-cache-1"), { exp: "10m" });
    const verify = vi.spyOn(crypto.subtle, "verify");
    const first = await verifyAccessToken(cfg, token);
    const second = await verifyAccessToken(cfg, token);
    expect(second).toEqual(first);
    expect(first).toMatchObject({ kind: "user", userId: "user-cache-1" });
    expect(verify).toHaveBeenCalledTimes(1);
  });

  it("a cached token still expires: after its exp it is token_expired", async () => {
    const cfg = getConfig(env);
    const exp = Math.floor(Date.now() / 1000) + 60;
    const token = await signWithServerKey(claims("user-cache-2"), { exp });
    expect(await verifyAccessToken(cfg, token)).toMatchObject({ userId: "user-cache-2" });
    vi.useFakeTimers({ toFake: ["Date"], now: exp * 1000 });
    await expect(verifyAccessToken(cfg, token)).rejects.toMatchObject({ code: "token_expired" });
  });

  it("only the very same token hits: an edited copy of a cached token is refused", async () => {
    const cfg = getConfig(env);
    const token = await signWithServerKey(claims("user-cache-3"), { exp: "10m" });
    await verifyAccessToken(cfg, token);
    await expect(verifyAccessToken(cfg, tamperPayload(token, { sub: "someone-else" }))).rejects.toMatchObject({
      code: "unauthorized",
    });
    await expect(verifyAccessToken(cfg, `${token}x`)).rejects.toMatchObject({ code: "unauthorized" });
  });

  it("a configuration with another secret does not see tokens verified under the first", async () => {
    const token = await signWithServerKey(claims("user-cache-4"), { exp: "10m" });
    await verifyAccessToken(getConfig(env), token);
    const other = getConfig({ ...env, JWT_SECRET: "another-secret-0123456789abcdef0123456789" });
    await expect(verifyAccessToken(other, token)).rejects.toMatchObject({ code: "unauthorized" });
  });
});

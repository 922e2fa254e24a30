import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { OutpostError } from "../src/index.js";
import { pkce } from "../src/pkce.js";
import { BASE, client, codeMailedTo, email, googleIdToken, PASSWORD } from "./helpers.js";

describe("sign-in without passwords", () => {
  it("signInWithOtp mails a code; verifyOtp signs in, creating the account with its email verified", async () => {
    const c = client();
    const to = email("otp");
    await c.auth.signInWithOtp(to);
    const user = await c.auth.verifyOtp({ email: to, code: await codeMailedTo(to) });
    if (user.mfaRequired) throw new Error("no second factor was set up");
    expect(user).toMatchObject({ email: to, emailVerified: true });
    expect(c.auth.session?.user?.id).toBe(user.id);
    expect((await c.auth.me()).id).toBe(user.id);
    c.close();
  });

  it("a wrong code rejects with invalid_code and keeps the device signed out", async () => {
    const c = client();
    const to = email("otp-wrong");
    await c.auth.signInWithOtp(to);
    const right = await codeMailedTo(to);
    const wrong = right === "000000" ? "000001" : "000000";
    await expect(c.auth.verifyOtp({ email: to, code: wrong })).rejects.toMatchObject({
      code: "invalid_code",
      status: 401,
    });
    expect(c.auth.session).toBeNull();
    c.close();
  });

  it("sign-ups carry the device's locale", async () => {
    const c = client();
    const user = await c.auth.signUp({ email: email("loc"), password: PASSWORD });
    expect(user.locale).toBe(Intl.DateTimeFormat().resolvedOptions().locale.split("-u-")[0]);
    c.close();
  });

  it("signInWithIdToken passes Apple's authorizationCode along (the server refuses it with Google)", async () => {
    const c = client();
    const idToken = await googleIdToken(`g-${Date.now()}`, email("g"));
    await expect(
      c.auth.signInWithIdToken({ provider: "google", idToken, authorizationCode: "code" }),
    ).rejects.toMatchObject({ code: "validation_failed" });
    c.close();
  });
});

describe("signInWithOAuth", () => {
  it("PKCE: a 43-character verifier and its S256 challenge", () => {
    for (let i = 0; i < 50; i++) {
      const { verifier, challenge } = pkce();
      expect(verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(challenge).toBe(createHash("sha256").update(verifier).digest("base64url"));
    }
  });

  it("builds the start URL; complete() checks the state and exchanges the code with the verifier", async () => {
    const c = client();
    const flow = c.auth.signInWithOAuth("google", "myapp://auth/callback");
    const url = new URL(flow.url);
    expect(`${url.origin}${url.pathname}`).toBe(`${BASE}/v1/auth/oauth/google/start`);
    expect(url.searchParams.get("redirectUri")).toBe("myapp://auth/callback");
    expect(url.searchParams.get("codeChallenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const state = url.searchParams.get("state")!;
    expect(flow.redirectUri).toBe("myapp://auth/callback");

    await expect(flow.complete("myapp://auth/callback?code=abc&state=other")).rejects.toBeInstanceOf(OutpostError);
    await expect(flow.complete(`myapp://auth/callback?error=access_denied&state=${state}`)).rejects.toMatchObject({
      code: "access_denied",
    });
    c.net.log.length = 0;
    // A code the server never issued: the exchange is sent, with the verifier, and refused.
    await expect(flow.complete(`myapp://auth/callback?code=made-up&state=${state}`)).rejects.toMatchObject({
      code: "invalid_code",
    });
    expect(c.net.count("POST", "/v1/auth/oauth/exchange")).toBe(1);
    expect(c.auth.session).toBeNull();
    c.close();
  });
});

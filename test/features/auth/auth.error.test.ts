import { describe, expect, it } from "vitest";
import { api, expectProblem, signup, uniqueEmail } from "../../helpers/api";
import { providerIdToken } from "../../helpers/tokens";

describe("auth: bad input gets a clear 4xx", () => {
  const invalidBodies: [string, string, unknown][] = [
    ["signup without a body", "/v1/auth/signup", undefined],
    ["signup with a bad email", "/v1/auth/signup", { email: "not-an-email", password: "long enough" }],
    ["signup with a 7-character password", "/v1/auth/signup", { email: "a@example.com", password: "1234567" }],
    ["signup with a 129-character password", "/v1/auth/signup", { email: "a@example.com", password: "x".repeat(129) }],
    [
      "signup with an unknown field",
      "/v1/auth/signup",
      { email: "a@example.com", password: "long enough", admin: true },
    ],
    [
      "signup trying to set its own id",
      "/v1/auth/signup",
      { email: "a@example.com", password: "long enough", id: "mine" },
    ],
    ["login with a number as password", "/v1/auth/login", { email: "a@example.com", password: 12345678 }],
    ["anonymous with fields", "/v1/auth/anonymous", { email: "a@example.com" }],
    ["refresh without a token", "/v1/auth/refresh", {}],
    ["password-reset with a bad email", "/v1/auth/password-reset", { email: "nope" }],
    [
      "password-reset/confirm with a short password",
      "/v1/auth/password-reset/confirm",
      { token: "x", newPassword: "short" },
    ],
    ["verify-email/confirm without a token", "/v1/auth/verify-email/confirm", {}],
    ["idtoken with an unknown provider", "/v1/auth/idtoken", { provider: "facebook", idToken: "x" }],
  ];
  for (const [name, path, body] of invalidBodies) {
    it(`${name} → 400 validation_failed with field errors`, async () => {
      const res = await api(path, {
        method: "POST",
        ...(body === undefined ? { raw: "", headers: { "content-type": "application/json" } } : { body }),
      });
      const p = expectProblem(res, 400, "validation_failed");
      expect(p.errors?.length).toBeGreaterThan(0);
      expect(p.errors![0]).toEqual({ path: expect.any(String), message: expect.any(String) });
    });
  }

  it("signup with a taken email → 409 email_taken (case-insensitively)", async () => {
    const u = await signup();
    expectProblem(
      await api("/v1/auth/signup", { body: { email: u.email.toUpperCase(), password: "another password" } }),
      409,
      "email_taken",
    );
  });

  it("login with a wrong password → 401 invalid_credentials", async () => {
    const u = await signup();
    expectProblem(
      await api("/v1/auth/login", { body: { email: u.email, password: "wrong password" } }),
      401,
      "invalid_credentials",
    );
  });

  it("linking a full account → 409 conflict; linking to a taken email → 409 email_taken", async () => {
    const u = await signup();
    expectProblem(
      await api("/v1/auth/link", { token: u.accessToken, body: { email: uniqueEmail(), password: "some password" } }),
      409,
      "conflict",
    );
    const guest = await api("/v1/auth/anonymous", { body: {} });
    expectProblem(
      await api("/v1/auth/link", {
        token: guest.body.session.accessToken,
        body: { email: u.email, password: "some password" },
      }),
      409,
      "email_taken",
    );
  });

  it("changing the password with a wrong current password → 401 invalid_credentials", async () => {
    const u = await signup();
    expectProblem(
      await api("/v1/auth/password", {
        token: u.accessToken,
        body: { currentPassword: "not it", newPassword: "new password 1" },
      }),
      401,
      "invalid_credentials",
    );
  });

  it("a made-up reset or verification code → 400 invalid_token", async () => {
    expectProblem(
      await api("/v1/auth/password-reset/confirm", { body: { token: "made-up", newPassword: "new password 1" } }),
      400,
      "invalid_token",
    );
    expectProblem(await api("/v1/auth/verify-email/confirm", { body: { token: "made-up" } }), 400, "invalid_token");
  });

  it("verify-email for a guest (no email) → 409 conflict", async () => {
    const guest = await api("/v1/auth/anonymous", { body: {} });
    expectProblem(
      await api("/v1/auth/verify-email", { token: guest.body.session.accessToken, body: {} }),
      409,
      "conflict",
    );
  });

  it("PATCH /v1/me with an unknown field or a foreign avatar → 400", async () => {
    const u = await signup();
    expectProblem(
      await api("/v1/me", { method: "PATCH", token: u.accessToken, body: { email: "x@example.com" } }),
      400,
      "validation_failed",
    );
    expectProblem(
      await api("/v1/me", { method: "PATCH", token: u.accessToken, body: { avatarFileId: "no-such-file" } }),
      400,
      "validation_failed",
    );
  });

  it("an ID token for another app, from the wrong issuer, expired, or with the wrong nonce → 401", async () => {
    const sub = `apple-${crypto.randomUUID()}`;
    const cases = [
      await providerIdToken("apple", { sub, aud: "com.someone.else" }),
      await providerIdToken("apple", { sub, aud: "com.example.outpost", iss: "https://evil.example" }),
      await providerIdToken("apple", { sub, aud: "com.example.outpost", expiresIn: -600 }),
    ];
    for (const idToken of cases)
      expectProblem(await api("/v1/auth/idtoken", { body: { provider: "apple", idToken } }), 401, "unauthorized");
    const withNonce = await providerIdToken("google", { sub, aud: "web-client-id", nonce: "expected" });
    expectProblem(
      await api("/v1/auth/idtoken", { body: { provider: "google", idToken: withNonce, nonce: "other" } }),
      401,
      "unauthorized",
    );
    expectProblem(
      await api("/v1/auth/idtoken", { body: { provider: "google", idToken: withNonce } }),
      401,
      "unauthorized",
    );
    // A Google token presented as an Apple one.
    expectProblem(
      await api("/v1/auth/idtoken", {
        body: { provider: "apple", idToken: await providerIdToken("google", { sub, aud: "com.example.outpost" }) },
      }),
      401,
      "unauthorized",
    );
  });
});

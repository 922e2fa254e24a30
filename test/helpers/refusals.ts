/**
 * The authorization cases every route shares (unkey's `runSharedRoleTests`, pocketbase's
 * scenarios): a caller with no token, a garbage token, a forged or tampered one, an expired one,
 * or another user's valid token on someone else's resource. One place states what each must get.
 */
import { expect } from "vitest";
import { api, type CallOptions, expectProblem, type TestUser } from "./api";
import { signWithServerKey, signWithWrongKey, tamperPayload, unsignedToken } from "./tokens";

export interface RouteCall {
  method: string;
  path: string;
  opts?: Omit<CallOptions, "method" | "token">;
}

/** Credentials that must never pass: each one, with the code the route must answer. */
export async function badCredentials(
  victim: TestUser,
): Promise<{ name: string; authorization: string | null; code: string }[]> {
  const claims = { sub: victim.id, sid: "forged-session", anon: false };
  return [
    { name: "no token", authorization: null, code: "unauthorized" },
    { name: "garbage token", authorization: "Bearer not-a-jwt", code: "unauthorized" },
    { name: "not a bearer", authorization: `Basic ${btoa("user:pass")}`, code: "unauthorized" },
    {
      name: "signed with another key",
      authorization: `Bearer ${await signWithWrongKey(claims)}`,
      code: "unauthorized",
    },
    { name: "alg none", authorization: `Bearer ${unsignedToken(claims)}`, code: "unauthorized" },
    {
      name: "tampered payload",
      authorization: `Bearer ${tamperPayload(victim.accessToken, { sub: "00000000-0000-7000-8000-000000000000" })}`,
      code: "unauthorized",
    },
    {
      name: "expired",
      authorization: `Bearer ${await signWithServerKey(claims, { exp: Math.floor(Date.now() / 1000) - 60 })}`,
      code: "token_expired",
    },
  ];
}

/**
 * A route that needs a token refuses every bad credential with 401 and its code, as problem+json.
 * A route open to anonymous callers (`anonymousAllowed`) still refuses a bad token it is sent.
 */
export async function expectStrangersRefused(
  call: RouteCall,
  victim: TestUser,
  { anonymousAllowed = false } = {},
): Promise<void> {
  for (const cred of await badCredentials(victim)) {
    if (anonymousAllowed && cred.authorization === null) continue;
    const headers = { ...(call.opts?.headers ?? {}) };
    if (cred.authorization) headers.authorization = cred.authorization;
    const res = await api(call.path, { ...call.opts, method: call.method, headers });
    expect(res.status, `${call.method} ${call.path} with ${cred.name}: ${res.text}`).toBe(401);
    expectProblem(res, 401, cred.code);
  }
}

/**
 * Another user's valid token on the owner's resource: refused with `status` (404 where the
 * contract hides existence, 403 where it does not), and the owner's own call still works.
 */
export async function expectWrongOwnerRefused(
  call: RouteCall,
  owner: TestUser,
  stranger: TestUser,
  status: 403 | 404 = 404,
): Promise<void> {
  const res = await api(call.path, { ...call.opts, method: call.method, token: stranger.accessToken });
  expect(res.status, `${call.method} ${call.path} as another user: ${res.text}`).toBe(status);
  expectProblem(res, status, status === 404 ? "not_found" : "forbidden");
  const own = await api(call.path, { ...call.opts, method: call.method, token: owner.accessToken });
  expect(own.status, `${call.method} ${call.path} as its owner: ${own.text}`).toBeLessThan(400);
}

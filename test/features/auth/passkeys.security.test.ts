/** Passkeys: who may call what (bad tokens, another user's passkeys and challenges), and the lookups' query plans. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createDb } from "../../../src/db";
import { listPasskeysQuery, passkeyByCredentialQuery } from "../../../src/features/auth/passkeys";
import { api, expectProblem, signup } from "../../helpers/api";
import { explain } from "../../helpers/query-plan";
import { expectStrangersRefused } from "../../helpers/refusals";
import { SoftAuthenticator } from "./passkey-authenticator";

async function registered() {
  const u = await signup();
  const auth = new SoftAuthenticator();
  const options = (await api("/v1/auth/passkeys/register/options", { token: u.accessToken, body: {} })).body;
  const res = await api("/v1/auth/passkeys/register", {
    token: u.accessToken,
    body: { credential: await auth.create(options) },
  });
  expect(res.status, res.text).toBe(201);
  return { u, auth, id: res.body.id as string };
}

describe("passkeys: strangers and other users", () => {
  it("every signed-in route refuses a missing, garbage, forged, tampered or expired token", async () => {
    const { u, id } = await registered();
    await expectStrangersRefused({ method: "POST", path: "/v1/auth/passkeys/register/options", opts: { body: {} } }, u);
    await expectStrangersRefused({ method: "POST", path: "/v1/auth/passkeys/register", opts: { body: {} } }, u);
    await expectStrangersRefused({ method: "GET", path: "/v1/auth/passkeys" }, u);
    await expectStrangersRefused(
      { method: "PATCH", path: `/v1/auth/passkeys/${id}`, opts: { body: { name: "x" } } },
      u,
    );
    await expectStrangersRefused({ method: "DELETE", path: `/v1/auth/passkeys/${id}` }, u);
  });

  it("another user neither sees, renames nor removes someone's passkey (404), and registers nothing for them", async () => {
    const alice = await registered();
    const bob = await signup();
    expect((await api("/v1/auth/passkeys", { token: bob.accessToken })).body.items).toEqual([]);
    const path = `/v1/auth/passkeys/${alice.id}`;
    expectProblem(
      await api(path, { method: "PATCH", token: bob.accessToken, body: { name: "mine" } }),
      404,
      "not_found",
    );
    expectProblem(await api(path, { method: "DELETE", token: bob.accessToken }), 404, "not_found");
    const mine = (await api("/v1/auth/passkeys", { token: alice.u.accessToken })).body.items;
    expect(mine).toMatchObject([{ id: alice.id, name: "Passkey" }]);
  });

  it("a registration challenge belongs to the user who asked: another user's token cannot redeem it", async () => {
    const alice = await signup();
    const bob = await signup();
    const options = (await api("/v1/auth/passkeys/register/options", { token: alice.accessToken, body: {} })).body;
    const credential = await new SoftAuthenticator().create(options);
    const res = await api("/v1/auth/passkeys/register", { token: bob.accessToken, body: { credential } });
    expectProblem(res, 401, "passkey_failed");
    expect((await api("/v1/auth/passkeys", { token: bob.accessToken })).body.items).toEqual([]);
  });

  it("the list and the sign-in never hand out key material", async () => {
    const { u, auth } = await registered();
    const list = await api("/v1/auth/passkeys", { token: u.accessToken });
    expect(Object.keys(list.body.items[0]).sort()).toEqual(["createdAt", "id", "lastUsedAt", "name"]);
    const options = (await api("/v1/auth/passkeys/login/options", { body: {} })).body;
    const login = await api("/v1/auth/passkeys/login", { body: { credential: await auth.get(options) } });
    expect(login.text).not.toMatch(/publicKey|public_key|counter/);
  });
});

describe("passkeys: the lookups use indexes", () => {
  const db = createDb(env.DB);
  const plan = (q: { toSQL(): { sql: string; params: unknown[] } }) => explain(q.toSQL().sql, q.toSQL().params);

  it("sign-in finds the passkey by credential id, the list by user (already in order)", async () => {
    const { u, auth } = await registered();
    const byCredential = await plan(
      passkeyByCredentialQuery(db, (await auth.get({ challenge: "x", rpId: "outpost.test" })).rawId),
    );
    expect(byCredential).toContain("passkeys_credential_unique");
    expect(byCredential).not.toMatch(/^SCAN /m);
    const list = await plan(listPasskeysQuery(db, u.id));
    expect(list).toContain("passkeys_user_created_idx");
    expect(list).not.toContain("USE TEMP B-TREE");
  });

  it("challenges are found by their hash and swept by expiry", async () => {
    const byHash = await explain("DELETE FROM passkey_challenges WHERE hash = ? AND kind = ? RETURNING *", [
      "h",
      "login",
    ]);
    expect(byHash).toMatch(/sqlite_autoindex_passkey_challenges_1|PRIMARY KEY/);
    const sweep = await explain("DELETE FROM passkey_challenges WHERE expires_at <= ?", ["2026-01-01"]);
    expect(sweep).toContain("passkey_challenges_expires_idx");
  });
});

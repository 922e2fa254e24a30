import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { client, email, PASSWORD } from "./helpers.js";

/** RFC 6238 (SHA-1, 6 digits, 30 s) computed here, independently of the server. */
function totp(secret: string, offset = 0): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const bits = [...secret].map((c) => alphabet.indexOf(c).toString(2).padStart(5, "0")).join("");
  const key = Buffer.from(bits.match(/.{8}/g)!.map((b) => Number.parseInt(b, 2)));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30_000) + offset));
  const h = createHmac("sha1", key).update(msg).digest();
  const o = h[19]! & 15;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

describe("second factors", () => {
  it("enroll, confirm; a sign-in answers mfaRequired (no session) until verify; disable needs that session", async () => {
    const c = client();
    const creds = { email: email("mfa"), password: PASSWORD };
    await c.auth.signUp(creds);
    const { secret, otpauthUrl } = await c.auth.mfa.enrollTotp();
    expect(otpauthUrl).toContain(`secret=${secret}`);
    const { recoveryCodes } = await c.auth.mfa.confirmTotp(totp(secret, -1));
    expect(recoveryCodes).toHaveLength(10);
    // This session predates the factor (aal1): changing the factors needs a session that proved it.
    await expect(c.auth.mfa.disableTotp(recoveryCodes[0]!)).rejects.toMatchObject({ code: "mfa_required" });
    await c.auth.signOut();

    const r = await c.auth.signInWithPassword(creds);
    if (!r.mfaRequired) throw new Error("expected a second-factor step");
    expect(r.methods).toEqual(["totp", "recovery"]);
    expect(c.auth.session).toBeNull();
    await expect(c.auth.mfa.verify(r.mfaToken, "wrong-code")).rejects.toMatchObject({
      code: "invalid_code",
      status: 401,
    });
    expect(c.auth.session).toBeNull();
    const user = await c.auth.mfa.verify(r.mfaToken, totp(secret));
    expect(user.email).toBe(creds.email);
    expect(c.auth.user?.id).toBe(user.id);
    await c.auth.mfa.disableTotp(recoveryCodes[1]!);
    const again = await client().auth.signInWithPassword(creds);
    expect(again.mfaRequired).toBeUndefined();
    c.close();
  });
});

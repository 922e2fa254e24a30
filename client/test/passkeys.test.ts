import { afterEach, describe, expect, it } from "vitest";
import { b64u, SoftAuthenticator, unb64u } from "../../test/features/auth/passkey-authenticator.js";
import { client, signedIn } from "./helpers.js";

const ORIGIN = "https://sdk.example";
// biome-ignore lint/suspicious/noExplicitAny: platform credential objects, as loosely shaped as the platform makes them
type Json = Record<string, any>;

/** react-native-passkey's shape: JSON options in (base64url strings), JSON credential out. */
const native = (device: SoftAuthenticator) => ({
  create: async ({ publicKey }: { publicKey: Json }) => device.create(publicKey as never),
  get: async ({ publicKey }: { publicKey: Json }) => device.get(publicKey as never),
});

/**
 * The browser's shape: `navigator.credentials.create/get({ publicKey })` with ArrayBuffers in, a
 * PublicKeyCredential with ArrayBuffers (and getTransports) out.
 */
const browserLike = (device: SoftAuthenticator, seen: Json[]) => {
  const buf = (s: string) => unb64u(s).buffer;
  const asJson = (o: Json): Json => {
    seen.push(o);
    const text = (b: ArrayBuffer) => b64u(new Uint8Array(b));
    return {
      ...o,
      challenge: text(o.challenge),
      ...(o.user ? { user: { ...o.user, id: text(o.user.id) } } : {}),
    };
  };
  const toPlatform = (c: Json) => ({
    id: c.id,
    rawId: buf(c.rawId),
    type: "public-key",
    response: {
      ...Object.fromEntries(
        Object.entries(c.response).flatMap(([k, v]) =>
          k === "transports" ? [] : [[k, typeof v === "string" ? buf(v) : v]],
        ),
      ),
      getTransports: () => c.response.transports,
    },
  });
  return {
    create: async ({ publicKey }: { publicKey: Json }) => toPlatform(await device.create(asJson(publicKey) as never)),
    get: async ({ publicKey }: { publicKey: Json }) => toPlatform(await device.get(asJson(publicKey) as never)),
  };
};

afterEach(() => {
  delete (globalThis as { PublicKeyCredential?: unknown }).PublicKeyCredential;
});

describe("passkeys", () => {
  it("React Native: registers, lists, signs in on another device's client, and removes", async () => {
    const device = native(new SoftAuthenticator(ORIGIN));
    const c = await signedIn();
    const passkey = await c.auth.passkeys.register(device.create, "Phone");
    expect(passkey).toMatchObject({ name: "Phone", createdAt: expect.any(String) });
    expect(await c.auth.passkeys.list()).toEqual([{ ...passkey, lastUsedAt: null }]);

    const other = client();
    const user = await other.auth.passkeys.signIn(device.get);
    expect(user.id).toBe(c.auth.user?.id);
    expect(other.auth.session?.user?.id).toBe(user.id);
    expect((await other.auth.me()).id).toBe(user.id);

    await c.auth.passkeys.remove(passkey.id);
    expect(await c.auth.passkeys.list()).toEqual([]);
    await expect(client().auth.passkeys.signIn(device.get)).rejects.toMatchObject({
      status: 401,
      code: "passkey_failed",
    });
    c.close();
    other.close();
  });

  it("browser: the options reach navigator.credentials as ArrayBuffers and the answer goes back as base64url", async () => {
    (globalThis as { PublicKeyCredential?: unknown }).PublicKeyCredential = () => undefined;
    const seen: Json[] = [];
    const device = browserLike(new SoftAuthenticator(ORIGIN), seen);
    const c = await signedIn();
    await c.auth.passkeys.register(device.create);
    await c.auth.passkeys.register(device.create, "Second");
    expect(seen[0]?.challenge).toBeInstanceOf(ArrayBuffer);
    expect(seen[0]?.user.id).toBeInstanceOf(ArrayBuffer);
    expect(seen[1]?.excludeCredentials[0].id).toBeInstanceOf(ArrayBuffer);
    const other = client();
    expect((await other.auth.passkeys.signIn(device.get)).id).toBe(c.auth.user?.id);
    expect(seen[2]?.challenge).toBeInstanceOf(ArrayBuffer);
    c.close();
    other.close();
  });

  it("a platform call that is cancelled rejects and leaves the device signed out", async () => {
    const other = client();
    await expect(
      other.auth.passkeys.signIn(async () => {
        throw new Error("NotAllowedError");
      }),
    ).rejects.toThrow("NotAllowedError");
    expect(other.auth.session).toBeNull();
    other.close();
  });
});

/**
 * Passkeys: the server's WebAuthn options handed to the platform's credential call (the browser's
 * `navigator.credentials.create/get`, or react-native-passkey), its answer posted back. Binary fields travel as
 * base64url; where the platform is the browser's WebAuthn, they become ArrayBuffers on the way in and out.
 */
// biome-ignore-all lint/suspicious/noExplicitAny: platform objects (DOM credentials, react-native-passkey JSON) differ in shape
import type { Http } from "./http.js";
import { b64url } from "./pkce.js";
import type { User } from "./types.js";
import { uuid } from "./util.js";

/** A passkey of the signed-in user, as listed (no key material). */
export interface Passkey {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}

type Json = Record<string, any>;
/**
 * The platform's credential call, given `{ publicKey }`: browser `(o) => navigator.credentials.create(o)`,
 * React Native `({ publicKey }) => Passkey.create(publicKey)` (react-native-passkey).
 */
export type CredentialCall = (options: { publicKey: any }) => Promise<unknown>;

const browser = () => typeof (globalThis as { PublicKeyCredential?: unknown }).PublicKeyCredential === "function";
const b64 = (v: any): any =>
  v == null || typeof v === "string"
    ? v
    : b64url(Array.from(new Uint8Array(v.buffer ?? v, v.byteOffset, v.byteLength)));
const bin = (s: string) =>
  Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0)).buffer;

/** The options with their binary fields as the platform wants them (ArrayBuffers for the browser's WebAuthn). */
const forPlatform = (o: Json): Json =>
  browser()
    ? {
        ...o,
        challenge: bin(o.challenge),
        user: o.user && { ...o.user, id: bin(o.user.id) },
        // Sign-in options list none: the device offers the passkeys it holds.
        excludeCredentials: o.excludeCredentials?.map((d: Json) => ({ ...d, id: bin(d.id) })),
      }
    : o;

/** The platform's credential in the JSON form the server reads. */
function toJson(c: any): Json {
  const r = c.response;
  const response: Json = { transports: r.getTransports?.() ?? r.transports };
  for (const k of ["clientDataJSON", "attestationObject", "authenticatorData", "signature", "userHandle"])
    response[k] = b64(r[k]);
  return { id: c.id, rawId: b64(c.rawId) ?? c.id, type: "public-key", response };
}

export class Passkeys {
  constructor(
    private readonly http: Http,
    private readonly start: (path: string, body: object) => Promise<User>,
  ) {}

  private async ask(path: string, call: CredentialCall): Promise<Json> {
    const o = await this.http.json<Json>(`/v1/auth/passkeys/${path}/options`, {
      method: "POST",
      body: {},
      auth: path === "register",
    });
    return toJson(await call({ publicKey: forPlatform(o) }));
  }

  /** Makes a passkey for the signed-in user with `create` (the platform's call) and registers it. */
  async register(create: CredentialCall, name?: string): Promise<Passkey> {
    const credential = await this.ask("register", create);
    return this.http.json("/v1/auth/passkeys/register", {
      method: "POST",
      body: { credential, name },
      idempotencyKey: uuid(),
    });
  }

  /** Signs in with a passkey the device offers (`get`: the platform's call). */
  async signIn(get: CredentialCall): Promise<User> {
    return this.start("/v1/auth/passkeys/login", { credential: await this.ask("login", get) });
  }

  async list(): Promise<Passkey[]> {
    return (await this.http.json<{ items: Passkey[] }>("/v1/auth/passkeys")).items;
  }

  async remove(id: string): Promise<void> {
    await this.http.send(`/v1/auth/passkeys/${encodeURIComponent(id)}`, { method: "DELETE" });
  }
}

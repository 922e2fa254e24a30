/**
 * A software WebAuthn authenticator for tests: makes ES256 (or RS256) credentials with WebCrypto and answers
 * creation and request options the way a phone's passkey provider does, with its own CBOR and DER encoders
 * (not the server's decoder). Every field of what it sends can be overridden to build a bad credential.
 */
import { concatBytes } from "../../helpers/bytes.js";

const enc = new TextEncoder();

export const b64u = (b: Uint8Array | ArrayBuffer) =>
  btoa(String.fromCharCode(...new Uint8Array(b)))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
export const unb64u = (s: string) =>
  Uint8Array.from(atob(s.replaceAll("-", "+").replaceAll("_", "/") + "===".slice((s.length + 3) % 4)), (c) =>
    c.charCodeAt(0),
  );

/** CBOR encoding (RFC 8949) of integers, byte and text strings, arrays, maps and booleans. */
export function cbor(v: unknown): Uint8Array<ArrayBuffer> {
  const head = (major: number, n: number) => {
    if (n < 24) return Uint8Array.of((major << 5) | n);
    if (n < 256) return Uint8Array.of((major << 5) | 24, n);
    if (n < 65536) return Uint8Array.of((major << 5) | 25, n >> 8, n & 255);
    return Uint8Array.of((major << 5) | 26, n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255);
  };
  if (typeof v === "number") return v >= 0 ? head(0, v) : head(1, -1 - v);
  if (typeof v === "boolean") return Uint8Array.of(v ? 0xf5 : 0xf4);
  if (v instanceof Uint8Array) return concatBytes(head(2, v.length), v);
  if (typeof v === "string") {
    const b = enc.encode(v);
    return concatBytes(head(3, b.length), b);
  }
  if (Array.isArray(v)) return concatBytes(head(4, v.length), ...v.map(cbor));
  if (v instanceof Map) return concatBytes(head(5, v.size), ...[...v].flatMap(([k, x]) => [cbor(k), cbor(x)]));
  throw new Error(`cannot encode ${typeof v}`);
}

/** An ECDSA signature as WebCrypto makes it (r‖s) to DER, as authenticators send it. */
function derSignature(raw: Uint8Array): Uint8Array<ArrayBuffer> {
  const int = (x: Uint8Array) => {
    let i = 0;
    while (i < x.length - 1 && x[i] === 0) i++;
    let v = x.subarray(i);
    if (v[0]! & 0x80) v = concatBytes(Uint8Array.of(0), v);
    return concatBytes(Uint8Array.of(2, v.length), v);
  };
  const body = concatBytes(int(raw.subarray(0, 32)), int(raw.subarray(32)));
  return concatBytes(Uint8Array.of(0x30, body.length), body);
}

const sha256 = async (d: Uint8Array | string) =>
  new Uint8Array(await crypto.subtle.digest("SHA-256", (typeof d === "string" ? enc.encode(d) : d) as BufferSource));

interface Stored {
  id: Uint8Array;
  alg: -7 | -257;
  keys: CryptoKeyPair;
  userHandle: string;
  counter: number;
}

/** What a test may change in what the authenticator sends. */
export interface Tweaks {
  origin?: string;
  rpId?: string;
  challenge?: string;
  type?: string;
  /** Authenticator data flags (default: user present and verified, plus attested data on creation). */
  flags?: number;
  /** The counter to report (default: the next one, or 0 for a counterless authenticator). */
  counter?: number;
  fmt?: "none" | "packed" | "fido-u2f";
  userHandle?: string | null;
  /** Sign with this credential's key but name another id. */
  credentialId?: string;
  /** On creation: the new credential's id (default: 32 random bytes). */
  newId?: Uint8Array;
  /** Flip a byte of the signature. */
  badSignature?: boolean;
}

interface CreationOptions {
  challenge: string;
  rp: { id: string };
  user: { id: string };
}
interface RequestOptions {
  challenge: string;
  rpId: string;
}

/** A passkey provider holding credentials. `counting: false` keeps every counter at 0 (as synced passkeys). */
export class SoftAuthenticator {
  readonly credentials: Stored[] = [];
  constructor(
    readonly origin = "https://outpost.test",
    readonly counting = true,
  ) {}

  private clientData(type: string, challenge: string, t: Tweaks) {
    return enc.encode(
      JSON.stringify({
        type: t.type ?? type,
        challenge: t.challenge ?? challenge,
        origin: t.origin ?? this.origin,
        crossOrigin: false,
      }),
    );
  }

  /** Answers creation options: a new credential, in `PublicKeyCredential.toJSON()` form. */
  async create(options: CreationOptions, t: Tweaks & { alg?: -7 | -257 } = {}) {
    const alg = t.alg ?? -7;
    const keys = (
      alg === -7
        ? await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])
        : await crypto.subtle.generateKey(
            { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: Uint8Array.of(1, 0, 1), hash: "SHA-256" },
            true,
            ["sign", "verify"],
          )
    ) as CryptoKeyPair;
    const id = t.newId ?? crypto.getRandomValues(new Uint8Array(32));
    let cose: Map<number, unknown>;
    if (alg === -7) {
      const raw = new Uint8Array((await crypto.subtle.exportKey("raw", keys.publicKey)) as ArrayBuffer);
      cose = new Map<number, unknown>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, raw.slice(1, 33)],
        [-3, raw.slice(33)],
      ]);
    } else {
      const jwk = (await crypto.subtle.exportKey("jwk", keys.publicKey)) as JsonWebKey;
      cose = new Map<number, unknown>([
        [1, 3],
        [3, -257],
        [-1, unb64u(jwk.n!)],
        [-2, unb64u(jwk.e!)],
      ]);
    }
    const counter = t.counter ?? 0;
    const counterBytes = new Uint8Array(4);
    new DataView(counterBytes.buffer).setUint32(0, counter);
    const authData = concatBytes(
      await sha256(t.rpId ?? options.rp.id),
      Uint8Array.of(t.flags ?? 0x45),
      counterBytes,
      new Uint8Array(16),
      Uint8Array.of(id.length >> 8, id.length & 255),
      id,
      cbor(cose),
    );
    const clientDataJSON = this.clientData("webauthn.create", options.challenge, t);
    const fmt = t.fmt ?? "none";
    const attStmt = new Map<string, unknown>();
    if (fmt !== "none") {
      attStmt.set("alg", alg);
      attStmt.set("sig", await this.sign({ alg, keys }, concatBytes(authData, await sha256(clientDataJSON))));
    }
    const attestationObject = cbor(
      new Map<string, unknown>([
        ["fmt", fmt],
        ["attStmt", attStmt],
        ["authData", authData],
      ]),
    );
    this.credentials.push({ id, alg, keys, userHandle: options.user.id, counter });
    const credId = t.credentialId ?? b64u(id);
    return {
      id: credId,
      rawId: credId,
      type: "public-key" as const,
      response: {
        clientDataJSON: b64u(clientDataJSON),
        attestationObject: b64u(attestationObject),
        transports: ["internal", "hybrid"],
      },
      authenticatorAttachment: "platform" as const,
      clientExtensionResults: {},
    };
  }

  private async sign(c: { alg: -7 | -257; keys: CryptoKeyPair }, data: Uint8Array): Promise<Uint8Array> {
    if (c.alg === -257) {
      return new Uint8Array(await crypto.subtle.sign("RSASSA-PKCS1-v1_5", c.keys.privateKey, data as BufferSource));
    }
    const raw = new Uint8Array(
      await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, c.keys.privateKey, data as BufferSource),
    );
    return derSignature(raw);
  }

  /** Answers request options with the credential `which` (default: the newest), as a discoverable sign-in. */
  async get(options: RequestOptions, t: Tweaks = {}, which = this.credentials.length - 1) {
    const c = this.credentials[which];
    if (!c) throw new Error("no credential");
    if (t.counter === undefined && this.counting) c.counter += 1;
    const counter = t.counter ?? c.counter;
    const counterBytes = new Uint8Array(4);
    new DataView(counterBytes.buffer).setUint32(0, counter);
    const authData = concatBytes(await sha256(t.rpId ?? options.rpId), Uint8Array.of(t.flags ?? 0x05), counterBytes);
    const clientDataJSON = this.clientData("webauthn.get", options.challenge, t);
    const signature = await this.sign(c, concatBytes(authData, await sha256(clientDataJSON)));
    if (t.badSignature) signature[signature.length - 5]! ^= 1;
    const credId = t.credentialId ?? b64u(c.id);
    return {
      id: credId,
      rawId: credId,
      type: "public-key" as const,
      response: {
        clientDataJSON: b64u(clientDataJSON),
        authenticatorData: b64u(authData),
        signature: b64u(signature),
        userHandle: t.userHandle === undefined ? c.userHandle : t.userHandle,
      },
      authenticatorAttachment: "platform" as const,
      clientExtensionResults: {},
    };
  }
}

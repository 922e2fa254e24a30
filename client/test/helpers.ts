/** Test helpers: clients on the real Worker, a network switch around the real fetch, forged tokens. */
import { importJWK, SignJWT } from "jose";
import { inject } from "vitest";
import {
  type ClientOptions,
  createClient,
  type KeyValueStorage,
  memoryStorage,
  type OutpostClient,
  type WebSocketLike,
} from "../src/index.js";
import type { Frame } from "../src/socket.js";

export const BASE = inject("outpostUrl");

interface LogEntry {
  method: string;
  path: string;
  status: number;
  key: string | null;
  /** What makes two requests "the same write": the Idempotency-Key, else method, path and body. */
  identity: string;
  lost?: boolean;
}

/**
 * Real fetch to the Worker with a log and a switch: `down` throws before anything is sent (no
 * network); `lose` lets the request reach the server, then throws instead of returning its answer
 * (the answer was lost on the way back) for the requests `lose` selects.
 */
export class Net {
  mode: "up" | "down" | "lose" = "up";
  log: LogEntry[] = [];
  private lostKeys = new Set<string>();
  /**
   * In `lose` mode, which answers are lost (default: the first success of each write: the server did it, the app
   * never hears).
   */
  lose: (e: LogEntry) => boolean = (e) => {
    if (e.method === "GET" || e.status >= 300 || this.lostKeys.has(e.identity)) return false;
    this.lostKeys.add(e.identity);
    return true;
  };

  fetch = async (input: string, init?: RequestInit): Promise<Response> => {
    const u = new URL(input);
    const method = init?.method ?? "GET";
    const key = new Headers(init?.headers).get("idempotency-key");
    const entry: LogEntry = {
      method,
      path: u.pathname + u.search,
      status: 0,
      key,
      identity: key ?? `${method} ${u.pathname} ${typeof init?.body === "string" ? init.body : ""}`,
    };
    this.log.push(entry);
    if (this.mode === "down") throw new TypeError("fetch failed: network is down");
    const res = await fetch(input, init);
    entry.status = res.status;
    if (this.mode === "lose" && this.lose(entry)) {
      await res.arrayBuffer();
      entry.lost = true;
      throw new TypeError("fetch failed: connection reset before the answer arrived");
    }
    return res;
  };

  count(method: string, path: string | RegExp): number {
    return this.log.filter(
      (e) => e.method === method && (typeof path === "string" ? e.path === path : path.test(e.path)),
    ).length;
  }
}

/**
 * WebSockets of a client, each of which a test can cut like a dropped network (no close frame reaches the SDK in
 * time).
 */
export class Sockets {
  readonly all: { url: string; ws: WebSocket; cut(): void; silence(): void; closeWith(code: number): void }[] = [];
  readonly Ctor: new (
    url: string,
  ) => WebSocketLike;
  constructor() {
    const self = this;
    this.Ctor = class implements WebSocketLike {
      private readonly ws: WebSocket;
      onopen: ((ev: unknown) => void) | null = null;
      onmessage: ((ev: { data: unknown }) => void) | null = null;
      onclose: ((ev: { code: number; reason?: string }) => void) | null = null;
      onerror: ((ev: unknown) => void) | null = null;
      private dead = false;
      constructor(url: string) {
        this.ws = new WebSocket(url);
        this.ws.onopen = (e) => !this.dead && this.onopen?.(e);
        this.ws.onmessage = (e) => !this.dead && this.onmessage?.({ data: e.data });
        this.ws.onclose = (e) => !this.dead && this.onclose?.({ code: e.code, reason: e.reason });
        this.ws.onerror = (e) => !this.dead && this.onerror?.(e);
        self.all.push({
          url,
          ws: this.ws,
          cut: () => {
            // The network dropped: nothing more arrives, and the SDK learns it as an abnormal close.
            this.dead = true;
            this.ws.close();
            this.onclose?.({ code: 1006, reason: "network dropped" });
          },
          silence: () => {
            // A dead connection that never reports a close: only the heartbeat can tell.
            this.dead = true;
          },
          closeWith: (code: number) => {
            // The server's close code, as the SDK would see it.
            this.dead = true;
            this.ws.close();
            this.onclose?.({ code, reason: "closed by server" });
          },
        });
      }
      get readyState() {
        return this.dead ? 3 : this.ws.readyState;
      }
      send(data: string) {
        if (this.dead) throw new Error("socket is closed");
        this.ws.send(data);
      }
      close(code?: number, reason?: string) {
        this.dead = true;
        try {
          this.ws.close(code, reason);
        } catch {
          this.ws.close();
        }
      }
    };
  }
  open(): Sockets["all"] {
    return this.all.filter((s) => s.ws.readyState === WebSocket.OPEN);
  }
}

export type TestClient = OutpostClient & { net: Net; storage: KeyValueStorage };

let n = 0;
export const email = (tag = "u") => `${tag}-${Date.now().toString(36)}-${++n}@sdk.test`;
export const PASSWORD = "correct horse battery";

export function client(o: Partial<ClientOptions> & { net?: Net } = {}): TestClient {
  const net = o.net ?? new Net();
  const storage = o.storage ?? memoryStorage();
  const c = createClient({
    url: BASE,
    pollIntervalMs: 60_000,
    reconnect: { minDelayMs: 20, maxDelayMs: 200 },
    ...o,
    storage,
    fetch: net.fetch,
  }) as TestClient;
  c.net = net;
  c.storage = storage;
  return c;
}

/** A new client signed in as a new user. */
export async function signedIn(o: Parameters<typeof client>[0] = {}): Promise<TestClient> {
  const c = client(o);
  await c.auth.signUp({ email: email(), password: PASSWORD });
  return c;
}

/** The server's access-token key (HKDF of the JWT secret, as src/lib/crypto.ts purposeKey). */
async function accessKey(): Promise<CryptoKey> {
  const enc = new TextEncoder();
  const ikm = await crypto.subtle.importKey("raw", enc.encode(inject("jwtSecret")), "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: enc.encode("outpost"), info: enc.encode("access-token") },
    ikm,
    { name: "HMAC", hash: "SHA-256", length: 256 },
    false,
    ["sign"],
  );
}

/** The same access token, signed by the server's key, but expired a minute ago. */
export async function expiredCopy(accessToken: string): Promise<string> {
  const claims = JSON.parse(
    atob((accessToken.split(".")[1] as string).replace(/-/g, "+").replace(/_/g, "/")),
  ) as Record<string, unknown>;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sid: claims.sid, anon: claims.anon })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(String(claims.sub))
    .setIssuer(String(claims.iss))
    .setAudience(claims.aud as string)
    .setIssuedAt(now - 1000)
    .setExpirationTime(now - 60)
    .sign(await accessKey());
}

/** A Google ID token signed by the test key set the Worker trusts. */
export async function googleIdToken(sub: string, mail: string, nonce?: string): Promise<string> {
  const key = await importJWK(inject("idTokenKey"), "RS256");
  return new SignJWT({ email: mail, email_verified: true, ...(nonce && { nonce }) })
    .setProtectedHeader({ alg: "RS256", kid: "sdk-test" })
    .setIssuer("https://accounts.google.com")
    .setAudience(inject("googleAudience"))
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime("5m")
    .sign(key);
}

/**
 * The one-time code in the newest mail to `to` (the stand-in mail provider the Worker posts to). Some
 * routes mail after their answer (`POST /v1/auth/otp`): the mail is waited for, up to 5 seconds.
 */
export async function codeMailedTo(to: string): Promise<string> {
  for (let waited = 0; ; waited += 50) {
    const mails = (await (await fetch(inject("mailUrl"))).json()) as { to: string; text: string }[];
    const mail = [...mails].reverse().find((m) => m.to === to.toLowerCase());
    const code = mail && /code: ([A-Za-z0-9_-]+)/.exec(mail.text)?.[1];
    if (code) return code;
    if (waited >= 5000) throw new Error(`no code mailed to ${to}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A new signed-in user whose email is verified (teams need it to join). */
export async function verified(o: Parameters<typeof client>[0] = {}): Promise<TestClient> {
  const c = await signedIn(o);
  await c.auth.requestEmailVerification();
  await c.auth.confirmEmail(await codeMailedTo(c.user!.email!));
  return c;
}

/** Resolves at the first value `pred` accepts among the values `subscribe` reports (no sleeping). */
export function until<T>(subscribe: (cb: (v: T) => void) => () => void, pred: (v: T) => boolean): Promise<T> {
  return new Promise((resolve) => {
    let off: (() => void) | undefined;
    let done = false;
    off = subscribe((v) => {
      if (done || !pred(v)) return;
      done = true;
      queueMicrotask(() => off?.());
      resolve(v);
    });
    if (done) off();
  });
}

/**
 * Stand-in sockets that speak frames the server does not send yet (API v1.1): the test feeds
 * server frames to the SDK and reads what the SDK sent. Everything else stays the real Worker.
 */
export function standIns() {
  const sockets: { url: string; sent: Frame[]; feed(f: Frame): void; close(code: number): void }[] = [];
  const waiting: [number, () => void][] = [];
  /** Resolves once the SDK's n-th socket is open. */
  const opened = (n: number) =>
    sockets.length >= n ? Promise.resolve() : new Promise<void>((ok) => waiting.push([n, ok]));
  class StandIn implements WebSocketLike {
    readyState = 0;
    onopen: ((ev: unknown) => void) | null = null;
    onmessage: ((ev: { data: unknown }) => void) | null = null;
    onclose: ((ev: { code: number; reason?: string }) => void) | null = null;
    onerror: ((ev: unknown) => void) | null = null;
    private readonly sent: Frame[] = [];
    constructor(url: string) {
      sockets.push({
        url,
        sent: this.sent,
        feed: (f) => this.onmessage?.({ data: JSON.stringify(f) }),
        close: (code) => {
          this.readyState = 3;
          this.onclose?.({ code });
        },
      });
      queueMicrotask(() => {
        this.readyState = 1;
        this.onopen?.({});
        for (const [n, ok] of waiting) if (sockets.length >= n) ok();
      });
    }
    send(d: string) {
      this.sent.push(JSON.parse(d) as Frame);
    }
    close() {
      this.readyState = 3;
    }
  }
  return { sockets, opened, StandIn };
}

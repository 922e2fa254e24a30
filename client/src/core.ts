/** What the feature modules share: one per client. */
import type { Auth } from "./auth.js";
import type { Http } from "./http.js";
import type { SocketEnv } from "./socket.js";
import type { KeyValueStorage } from "./storage.js";

export interface Core {
  http: Http;
  auth: Auth;
  storage: KeyValueStorage;
  /** Prefix of every storage key. */
  prefix: string;
  now(): number;
  sockets: SocketEnv;
}

export const enc = encodeURIComponent;

/**
 * Sessions: sign-in in all its forms, the session persisted in storage, the access token refreshed
 * ahead of expiry and on `token_expired` (one refresh in flight however many callers wait), and a
 * sign-out only when the server says the session is over, never because the network failed.
 */
import { OutpostError } from "./errors.js";
import type { Http, TokenSource } from "./http.js";
import { Passkeys } from "./passkeys.js";
import { pkce } from "./pkce.js";
import { type KeyValueStorage, readJson, writeJson } from "./storage.js";
import type { AuthEvent, MfaChallenge, Session, SessionInfo, SignInResult, User } from "./types.js";
import { Emitter, noop, same, uuid } from "./util.js";

interface SessionJson {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}
interface AuthResult {
  user: User;
  session: SessionJson;
}

export interface AuthDeps {
  http: Http;
  storage: KeyValueStorage;
  key: string;
  now: () => number;
  /** Refresh this long before the access token expires. */
  marginMs: number;
}

/** The device's language (BCP 47, e.g. `fr-CA`) for the server's mails; undefined when unknown. */
const locale = (() => {
  try {
    const l = Intl.DateTimeFormat().resolvedOptions().locale.split("-u-")[0];
    return l && l.length <= 35 && /^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/.test(l) ? l : undefined;
  } catch {
    return undefined;
  }
})();

/**
 * A refresh answer that ends the session for good: the token was reused, revoked or is invalid, or the account is
 * disabled.
 */
const definitive = (e: unknown) =>
  e instanceof OutpostError &&
  (e.status === 401 || e.code === "account_disabled" || e.code === "validation_failed" || e.code === "invalid_token");

export class Auth implements TokenSource {
  session: Session | null = null;
  readonly ready: Promise<void>;
  private refreshing: Promise<void> | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private active = true;
  private readonly ev = new Emitter<{ change: [AuthEvent, Session | null] }>();
  /** @internal Work a sign-in waits for (registering the push token), best effort. */
  afterSignIn: () => Promise<unknown> = async () => undefined;
  /** @internal What the client does around a sign-out: unregister push, drop this user's queues. */
  beforeSignOut: (drop: boolean) => Promise<void> = async () => undefined;

  /** Passkeys: register one for the signed-in user, sign in with one, list and remove them. */
  readonly passkeys: Passkeys;

  constructor(private readonly d: AuthDeps) {
    // A passkey sign-in is complete in itself (aal2): it never answers mfaRequired.
    this.passkeys = new Passkeys(d.http, (path, body) => this.signIn(path, body) as Promise<User>);
    this.ready = readJson<Session | null>(d.storage, d.key, null).then((s) => {
      this.session = s && typeof s.refreshToken === "string" ? s : null;
      this.schedule();
    });
  }

  /** The signed-in user (null when signed out). */
  get user(): User | null {
    return this.session?.user ?? null;
  }

  /**
   * Calls `cb` on every change of the session, and once with `INITIAL_SESSION` when the stored
   * session has been read. Returns the function that stops it.
   */
  onAuthStateChange(cb: (event: AuthEvent, session: Session | null) => void): () => void {
    let live = true;
    void this.ready.then(() => live && cb("INITIAL_SESSION", this.session));
    const off = this.ev.on("change", cb);
    return () => {
      live = false;
      off();
    };
  }

  async getSession(): Promise<Session | null> {
    await this.ready;
    return this.session;
  }

  // --- sign in -------------------------------------------------------------------------

  signUp(body: { email: string; password: string; name?: string }): Promise<User> {
    return this.signIn("/v1/auth/signup", { locale, ...body }) as Promise<User>;
  }
  signInWithPassword(body: { email: string; password: string }): Promise<SignInResult> {
    return this.signIn("/v1/auth/login", body);
  }
  /** A guest account; `linkAccount` later turns it into a full one with the same id. */
  signInAnonymously(): Promise<User> {
    return this.signIn("/v1/auth/anonymous", {}) as Promise<User>;
  }
  /**
   * Native Sign in with Apple / Google: the ID token the platform SDK returned, and the raw nonce if one was used.
   * Apple: pass its `authorizationCode` too, so the server can revoke the sign-in when the account is deleted.
   */
  signInWithIdToken(body: {
    provider: "apple" | "google";
    idToken: string;
    nonce?: string;
    name?: string;
    authorizationCode?: string;
  }): Promise<SignInResult> {
    return this.signIn("/v1/auth/idtoken", { locale, ...body });
  }
  /** Mails a 6-digit code and a magic link (in the device's language); then `verifyOtp`. */
  async signInWithOtp(email: string): Promise<void> {
    await this.d.http.send("/v1/auth/otp", { method: "POST", body: { email, locale }, auth: false });
  }
  /** Signs in with the mailed code (and its address) or the magic link's `token`; makes the account if none. */
  verifyOtp(body: { email: string; code: string } | { token: string }): Promise<SignInResult> {
    return this.signIn("/v1/auth/otp/verify", { locale, ...body });
  }
  /**
   * OAuth / OpenID sign-in in a browser, with PKCE. Open `url` (Expo: `WebBrowser.openAuthSessionAsync(url,
   * redirectUri)`), then pass the URL the browser returned to to `complete`. `redirectUri` must be in the
   * server's OAUTH_REDIRECT_URIS.
   */
  signInWithOAuth(
    provider: string,
    redirectUri: string,
  ): { url: string; redirectUri: string; complete(returnedUrl: string): Promise<SignInResult> } {
    const { verifier, challenge } = pkce();
    const state = pkce().verifier;
    const q = new URLSearchParams({ redirectUri, codeChallenge: challenge, state });
    return {
      url: `${this.d.http.base}/v1/auth/oauth/${encodeURIComponent(provider)}/start?${q}`,
      redirectUri,
      complete: (returned) => {
        const p = new URLSearchParams(returned.split(/[?#]/)[1] ?? "");
        if (p.get("state") !== state || !p.get("code")) {
          const code = p.get("error") ?? "invalid_state";
          return Promise.reject(new OutpostError(401, code, `Sign-in did not complete: ${code}`));
        }
        return this.signIn("/v1/auth/oauth/exchange", { code: p.get("code"), codeVerifier: verifier });
      },
    };
  }

  /**
   * Second factors. A sign-in of an account with one answers an `MfaChallenge` (`mfaRequired: true`), not
   * a session: `verify` finishes it with a TOTP or recovery code. Changing them needs such a session.
   */
  readonly mfa = {
    /** Starts TOTP: the secret and the `otpauth://` URL to show as a QR code; then `confirmTotp`. */
    enrollTotp: (): Promise<{ secret: string; otpauthUrl: string }> => this.post("/totp", {}),
    /** Confirms with a code from the app; answers the 10 single-use recovery codes, shown once. */
    confirmTotp: (code: string): Promise<{ recoveryCodes: string[] }> => this.post("/totp/confirm", { code }),
    disableTotp: (code: string): Promise<void> =>
      this.d.http.send("/v1/auth/mfa/totp", { method: "DELETE", body: { code } }).then(noop),
    verify: (mfaToken: string, code: string): Promise<User> =>
      this.signIn("/v1/auth/mfa/verify", { mfaToken, code }) as Promise<User>,
  };

  private post<T>(path: string, body: object): Promise<T> {
    return this.d.http.json<T>(`/v1/auth/mfa${path}`, { method: "POST", body });
  }

  private async signIn(path: string, body: object): Promise<SignInResult> {
    await this.ready;
    const r = await this.d.http.json<AuthResult | MfaChallenge>(path, { method: "POST", body, auth: false });
    if ("mfaRequired" in r) return r;
    await this.store(r.session, r.user, "SIGNED_IN");
    await this.afterSignIn().catch(noop);
    return r.user;
  }

  /** Guest → full account (same id, same data). */
  async linkAccount(body: { email: string; password: string }): Promise<User> {
    const r = await this.d.http.json<{ user: User }>("/v1/auth/link", { method: "POST", body, idempotencyKey: uuid() });
    await this.setUser(r.user);
    return r.user;
  }

  // --- sign out ------------------------------------------------------------------------

  /**
   * Signs out: unregisters this device's push token, ends the session on the server, drops this
   * user's queued writes, chat outboxes and uploads (pending ones reject with `signed_out`).
   */
  async signOut(): Promise<void> {
    await this.ready;
    await this.beforeSignOut(true);
    if (this.session) await this.d.http.send("/v1/auth/logout", { method: "POST", body: {} }).catch(noop);
    await this.end();
  }

  /** Deletes the account and everything it owns (app store requirement), then signs out on this device. */
  async deleteAccount(): Promise<void> {
    await this.d.http.send("/v1/me", { method: "DELETE" });
    await this.beforeSignOut(false);
    await this.end();
  }

  // --- account -------------------------------------------------------------------------

  /** The user as the server has it now (also refreshes the stored copy). */
  async me(): Promise<User> {
    const u = await this.d.http.json<User>("/v1/me");
    await this.setUser(u);
    return u;
  }
  async updateMe(body: { name?: string | null; avatarFileId?: string | null; locale?: string | null }): Promise<User> {
    const u = await this.d.http.json<User>("/v1/me", { method: "PATCH", body });
    await this.setUser(u);
    return u;
  }
  async listSessions(): Promise<SessionInfo[]> {
    return (await this.d.http.json<{ items: SessionInfo[] }>("/v1/auth/sessions")).items;
  }
  async revokeSession(id: string): Promise<void> {
    await this.d.http.send(`/v1/auth/sessions/${encodeURIComponent(id)}`, { method: "DELETE" });
  }
  /** Other sessions are signed out; this one stays. */
  async changePassword(body: { currentPassword: string; newPassword: string }): Promise<void> {
    await this.d.http.send("/v1/auth/password", { method: "POST", body, idempotencyKey: uuid() });
  }
  async requestPasswordReset(email: string): Promise<void> {
    await this.d.http.send("/v1/auth/password-reset", { method: "POST", body: { email }, auth: false });
  }
  async confirmPasswordReset(body: { token: string; newPassword: string }): Promise<void> {
    await this.d.http.send("/v1/auth/password-reset/confirm", { method: "POST", body, auth: false });
  }
  async requestEmailVerification(): Promise<void> {
    await this.d.http.send("/v1/auth/verify-email", { method: "POST", body: {}, idempotencyKey: uuid() });
  }
  async confirmEmail(token: string): Promise<void> {
    await this.d.http.send("/v1/auth/verify-email/confirm", { method: "POST", body: { token }, auth: false });
  }

  // --- tokens --------------------------------------------------------------------------

  async token(): Promise<string | null> {
    await this.ready;
    if (this.refreshing) await this.refreshing.catch(noop);
    const s = this.session;
    if (!s) return null;
    if (s.expiresAt - this.d.now() < this.margin(s)) {
      try {
        await this.refresh();
      } catch (e) {
        // Offline: a token that has not expired yet still works.
        if (this.session !== s || s.expiresAt <= this.d.now()) throw e;
      }
    }
    return this.session?.accessToken ?? null;
  }

  async retryToken(failed: string): Promise<string | null> {
    if (this.refreshing) await this.refreshing.catch(noop);
    // Someone else already refreshed after this token failed: use theirs.
    if (this.session && this.session.accessToken !== failed) return this.session.accessToken;
    if (!this.session) return null;
    await this.refresh();
    return this.session?.accessToken ?? null;
  }

  /** Rotates the refresh token now. One request however many callers ask at once. */
  refresh(): Promise<void> {
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    const s = this.session;
    if (!s) return;
    let r: { session: SessionJson };
    try {
      r = await this.d.http.json("/v1/auth/refresh", {
        method: "POST",
        body: { refreshToken: s.refreshToken },
        auth: false,
      });
    } catch (e) {
      if (definitive(e) && this.session === s) await this.end();
      else this.schedule(30_000);
      throw e;
    }
    if (this.session === s) await this.store(r.session, s.user, "TOKEN_REFRESHED");
  }

  // --- state ---------------------------------------------------------------------------

  /** Foreground: refresh if due and keep a timer for the next one; background: no timers. */
  setActive(active: boolean): void {
    this.active = active;
    this.schedule();
  }

  /** @internal Forgets the session on this device only (the server's session lives on: use `signOut`). */
  async end(): Promise<void> {
    if (!this.session) return;
    this.session = null;
    this.schedule();
    await this.d.storage.removeItem(this.d.key).catch(noop);
    this.ev.emit("change", "SIGNED_OUT", null);
  }

  private async store(s: SessionJson, user: User | null, event: AuthEvent): Promise<void> {
    this.session = {
      accessToken: s.accessToken,
      refreshToken: s.refreshToken,
      expiresAt: this.d.now() + s.expiresIn * 1000,
      lifetimeMs: s.expiresIn * 1000,
      user,
    };
    await writeJson(this.d.storage, this.d.key, this.session);
    this.schedule();
    this.ev.emit("change", event, this.session);
  }

  private async setUser(user: User): Promise<void> {
    if (!this.session || same(this.session.user, user)) return;
    this.session = { ...this.session, user };
    await writeJson(this.d.storage, this.d.key, this.session);
    this.ev.emit("change", "USER_UPDATED", this.session);
  }

  /**
   * How long before expiry to refresh: the configured margin, but at most half the token's
   * lifetime (a token that lives less than the margin would otherwise be refreshed again at once).
   */
  private margin(s: Session): number {
    return s.lifetimeMs ? Math.min(this.d.marginMs, s.lifetimeMs / 2) : this.d.marginMs;
  }

  /** The timer that refreshes ahead of expiry while the app is in the foreground. */
  private schedule(delay?: number): void {
    clearTimeout(this.timer);
    const s = this.session;
    if (!s || !this.active) return;
    const due = delay ?? Math.max(0, s.expiresAt - this.margin(s) - this.d.now());
    this.timer = setTimeout(() => void this.refresh().catch(noop), due);
    (this.timer as { unref?: () => void }).unref?.();
  }
}

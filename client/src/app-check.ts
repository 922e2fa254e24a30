/**
 * App integrity: gets an `Outpost-App-Check` token from the app's provider (the native module's
 * attestation, assertion or integrity token, a Turnstile token, or a debug token), keeps it until
 * shortly before it expires, and gets a new one once when the server answers `app_check_failed`.
 */
import type { Http } from "./http.js";

/** What the app's provider returns for a challenge: one proof of one platform. */
export type AppCheckProof =
  | { platform: "apple"; keyId: string; attestation: string }
  | { platform: "apple"; keyId: string; assertion: string }
  | { platform: "android"; integrityToken: string }
  | { platform: "web"; turnstileToken: string }
  | { platform: "debug"; debugToken: string };

/**
 * Called with a fresh single-use challenge (use it as App Attest's client data, SHA-256 of its text,
 * or as Play Integrity's nonce); returns the proof.
 */
export type AppCheckProvider = (challenge: string) => Promise<AppCheckProof>;

/** Tokens are renewed this long before they expire. */
const MARGIN_MS = 5 * 60_000;

export class AppCheck {
  private token: string | null = null;
  private expires = 0;
  private pending: Promise<string | null> | null = null;

  constructor(
    private readonly http: Http,
    private readonly provider: AppCheckProvider,
    private readonly now: () => number,
  ) {}

  /** A token that is not about to expire, or null when the provider failed (the request goes without). */
  get(): Promise<string | null> {
    if (this.token && this.now() < this.expires - MARGIN_MS) return Promise.resolve(this.token);
    this.pending ??= this.fetch().finally(() => {
      this.pending = null;
    });
    return this.pending;
  }

  /** After `app_check_failed` with `failed`: a new token (one fetch for all callers), or null. */
  retry(failed: string | null): Promise<string | null> {
    if (this.token === failed) this.token = null;
    return this.get();
  }

  private async fetch(): Promise<string | null> {
    try {
      const opts = { method: "POST", auth: false, body: {} };
      const { challenge } = await this.http.json<{ challenge: string }>("/v1/app-check/challenge", opts);
      const { platform, ...proof } = await this.provider(challenge);
      const body = platform === "apple" || platform === "android" ? { ...proof, challenge } : proof;
      const t = await this.http.json<{ token: string; expiresIn: number }>(`/v1/app-check/${platform}`, {
        ...opts,
        body,
      });
      this.token = t.token;
      this.expires = this.now() + t.expiresIn * 1000;
      return t.token;
    } catch {
      return null;
    }
  }
}

/** The one error type the SDK throws: a problem+json answer of the server, or a transport failure. */

/** One invalid field of a `validation_failed` answer. */
export interface FieldError {
  path: string;
  message: string;
}

/**
 * Stable error codes: the server's (see its API contract) plus the SDK's own transport codes
 * `network_error` (no answer: offline, DNS, reset), `timeout` and `aborted` (status 0), and `signed_out`
 * (status 401: the user who queued a write, a chat send or an upload signed out or another user
 * signed in before it went out; it was not sent as anyone else), and `removed_from_team` (403 or 404: the user
 * is no longer in a team, so a queued write of its records was dropped or a watch of it stopped).
 */
export type ErrorCode =
  | "validation_failed"
  | "bad_request"
  | "invalid_token"
  | "unauthorized"
  | "invalid_credentials"
  | "token_expired"
  | "refresh_token_reused"
  | "session_revoked"
  | "mfa_required"
  | "forbidden"
  | "account_disabled"
  | "not_found"
  | "email_taken"
  | "conflict"
  | "gone"
  | "resync_required"
  | "version_conflict"
  | "payload_too_large"
  | "quota_exceeded"
  | "unsupported_media_type"
  | "rate_limited"
  | "internal"
  | "unavailable"
  | "network_error"
  | "timeout"
  | "aborted"
  | "signed_out"
  | "removed_from_team"
  | "upgrade_required"
  | (string & {});

export class OutpostError extends Error {
  override readonly name = "OutpostError";
  /** HTTP status; 0 when no answer arrived (`network_error`, `timeout`, `aborted`). */
  readonly status: number;
  readonly code: ErrorCode;
  /** Field errors of `validation_failed` (empty otherwise). */
  readonly errors: FieldError[];
  /** The server's `X-Request-Id`, to quote in a bug report (null without an answer). */
  readonly requestId: string | null;
  /** Seconds from `Retry-After`, when the server sent one. */
  readonly retryAfter: number | null;

  constructor(
    status: number,
    code: ErrorCode,
    message: string,
    o: { errors?: FieldError[]; requestId?: string | null; retryAfter?: number | null; cause?: unknown } = {},
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.errors = o.errors ?? [];
    this.requestId = o.requestId ?? null;
    this.retryAfter = o.retryAfter ?? null;
    if (o.cause !== undefined) (this as { cause?: unknown }).cause = o.cause;
  }
}

/** 426 `upgrade_required`: this app version is below the platform's minimum; send the user to `storeUrl`. */
export class UpgradeRequiredError extends OutpostError {
  constructor(
    message: string,
    readonly storeUrl: string | null,
    readonly minVersion: string | null,
    requestId: string | null,
  ) {
    super(426, "upgrade_required", message, { requestId });
  }
}

/** No answer, a 5xx, a 429 or a busy idempotency key: trying again later may work. */
export const isRetryable = (e: unknown): boolean =>
  !(e instanceof OutpostError) ||
  e.status === 0 ||
  e.status >= 500 ||
  e.status === 429 ||
  (e.status === 409 && e.retryAfter !== null);

/** What a user's pending work rejects with when that user is no longer the one signed in. */
export const signedOut = (what: string): OutpostError =>
  new OutpostError(401, "signed_out", `The user who made this ${what} signed out before it was sent; it was not sent.`);

/** A queued write or a watch of a team the user is no longer in (removed, left, or the team was deleted). */
export const removedFromTeam = (teamId: string, status: number): OutpostError =>
  new OutpostError(status, "removed_from_team", `No longer a member of team ${teamId}: its records left this device.`);

export const toError = (e: unknown): OutpostError =>
  e instanceof OutpostError
    ? e
    : new OutpostError(0, "network_error", e instanceof Error ? e.message : String(e), { cause: e });

/**
 * The one error model: code an error with `AppError`, render it as RFC 9457 problem+json in
 * `problem()`. Handlers throw; `app.onError` renders. Bodies never carry stacks or SQL.
 */
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** Stable error codes (the public contract) and their HTTP status and title. */
const errorCodes = {
  validation_failed: [400, "Request validation failed"],
  bad_request: [400, "Bad request"],
  invalid_token: [400, "Invalid or expired token"],
  unauthorized: [401, "Authentication required"],
  invalid_credentials: [401, "Invalid credentials"],
  token_expired: [401, "Token expired"],
  refresh_token_reused: [401, "Refresh token reused"],
  invalid_code: [401, "Invalid code"],
  passkey_failed: [401, "Passkey refused"],
  session_revoked: [401, "Session revoked"],
  mfa_required: [401, "Second factor required"],
  app_check_failed: [401, "App check failed"],
  forbidden: [403, "Forbidden"],
  account_disabled: [403, "Account disabled"],
  not_found: [404, "Not found"],
  method_not_allowed: [405, "Method not allowed"],
  email_taken: [409, "Email already registered"],
  conflict: [409, "Conflict"],
  gone: [410, "Gone"],
  resync_required: [410, "Resync required"],
  version_conflict: [412, "Version conflict"],
  precondition_failed: [412, "Precondition failed"],
  payload_too_large: [413, "Payload too large"],
  quota_exceeded: [413, "Storage quota exceeded"],
  unsupported_media_type: [415, "Unsupported media type"],
  range_not_satisfiable: [416, "Range not satisfiable"],
  upgrade_required: [426, "Upgrade required"],
  rate_limited: [429, "Too many requests"],
  internal: [500, "Internal server error"],
  misconfigured: [500, "Server misconfigured"],
  unavailable: [503, "Service unavailable"],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof errorCodes;

export interface FieldError {
  path: string;
  message: string;
}

/** A code the app's own logic chose (a before hook's `refuse()`), outside Outpost's own list. */
export type AppCode = string & { readonly appCode: true };

/** Titles of the statuses an app's refusal may use (RFC 9457 `about:blank`: the status phrase). */
const statusPhrases: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  409: "Conflict",
  410: "Gone",
  412: "Precondition Failed",
  413: "Content Too Large",
  422: "Unprocessable Content",
  429: "Too Many Requests",
};

/**
 * The error every layer throws. `headers` are added to the response (e.g. Retry-After); `members` are extra
 * members of the problem body (e.g. `storeUrl` of `upgrade_required`), never replacing the standard ones.
 */
export class AppError extends Error {
  readonly status: ContentfulStatusCode;
  readonly code: ErrorCode | AppCode;
  constructor(
    code: ErrorCode,
    readonly detail?: string,
    readonly extra: {
      errors?: FieldError[];
      headers?: Record<string, string>;
      members?: Record<string, string | number | boolean | null>;
    } = {},
  ) {
    super(detail ?? errorCodes[code][1]);
    this.code = code;
    this.status = errorCodes[code][0] as ContentfulStatusCode;
  }

  /** The app's own refusal (`refuse(422, "content_refused", "…")`): its status and code, as given. */
  static refusal(status: number, code: string, detail: string): AppError {
    const e = new AppError("bad_request", detail);
    Object.assign(e, { code: code as AppCode, status: status as ContentfulStatusCode });
    return e;
  }
}

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode | AppCode;
  errors?: FieldError[];
  instance?: string;
}

/** Renders a problem+json response. The only place error bodies are built. */
export function problem(err: AppError, requestId?: string, clientRequestId?: string | null): Response {
  const own = Object.hasOwn(errorCodes, err.code) ? errorCodes[err.code as ErrorCode] : null;
  const status = own ? own[0] : err.status;
  const title = own ? own[1] : (statusPhrases[status] ?? "Request refused");
  const body: Problem = {
    ...err.extra.members,
    type: own ? `https://outpost.dev/problems/${err.code.replaceAll("_", "-")}` : "about:blank",
    title,
    status,
    detail: err.detail ?? title,
    code: err.code,
    ...(err.extra.errors ? { errors: err.extra.errors } : {}),
    ...(requestId ? { instance: `urn:request:${requestId}` } : {}),
  };
  const headers = new Headers({ "content-type": "application/problem+json; charset=utf-8" });
  for (const [k, v] of Object.entries(err.extra.headers ?? {})) headers.set(k, v);
  // The header echoes a valid id the client sent (the contract); `instance` is always the server's.
  const echoed = clientRequestId ?? requestId;
  if (echoed) headers.set("x-request-id", echoed);
  return new Response(JSON.stringify(body), { status, headers });
}

/** True when a D1 error is a violation of the given SQLite constraint (D1 puts it in message or cause). */
export function isConstraintError(e: unknown, kind: "UNIQUE" | "FOREIGN KEY"): boolean {
  return e instanceof Error && `${e.message} ${String(e.cause ?? "")}`.includes(`${kind} constraint failed`);
}

/** Maps anything thrown to an AppError; unknown errors become `internal` and are logged (without secrets). */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof Error && "status" in err && "getResponse" in err) {
    // Hono's HTTPException (e.g. from body-limit or malformed JSON)
    const status = Number((err as { status: number }).status);
    if (status === 413) return new AppError("payload_too_large");
    if (status === 401) return new AppError("unauthorized");
    if (status === 400) {
      // The validator's own failures (malformed JSON, bad form data) are validation failures too.
      const message = err.message || "The request body could not be parsed.";
      return new AppError("validation_failed", message, { errors: [{ path: "body", message }] });
    }
    if (status > 400 && status < 500) return new AppError("bad_request", err.message || undefined);
  }
  // A write that refers to a row deleted meanwhile (e.g. a still-valid token whose account was just
  // deleted). Writes run in atomic batches, so nothing was written: a conflict, not a server fault.
  if (isConstraintError(err, "FOREIGN KEY")) {
    return new AppError("conflict", "Something this request refers to no longer exists.");
  }
  return new AppError("internal", "Something went wrong on our side.");
}

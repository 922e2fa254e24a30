/**
 * The HTTP layer: JSON in and out, problem+json → OutpostError, the access token (fresh, and
 * refreshed once then retried on a 401), Idempotency-Key, the read-replica bookmark, timeouts.
 */
import { type FieldError, OutpostError, UpgradeRequiredError } from "./errors.js";

export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

export interface RequestOptions {
  method?: string;
  query?: { [k: string]: string | number | boolean | null | undefined };
  /** A JSON body. */
  body?: unknown;
  /** A binary body (sent as is, with `contentType`). */
  raw?: Blob | Uint8Array | ArrayBuffer;
  contentType?: string;
  headers?: { [k: string]: string };
  /** Send the access token (default true). */
  auth?: boolean;
  idempotencyKey?: string;
  signal?: AbortSignal;
}

/** What the HTTP layer needs from the session. */
export interface TokenSource {
  /** A token that is not about to expire (refreshing first if needed), or null when signed out. */
  token(): Promise<string | null>;
  /** After a 401 with `failed`: a newer token (refreshing once for all callers), or null. */
  retryToken(failed: string): Promise<string | null>;
}

export class Http {
  /** The latest `Outpost-Bookmark` seen; sent back on every request (read-your-writes on replicas). */
  bookmark: string | null = null;
  tokens!: TokenSource;
  /** Sent on every request (`Outpost-Client`, `Outpost-Install-Id`). */
  headers: { [k: string]: string } = {};
  /** Set with the `appCheck` option: the `Outpost-App-Check` token of every request but the app-check routes. */
  appCheck: { get(): Promise<string | null>; retry(failed: string | null): Promise<string | null> } | null = null;

  constructor(
    readonly base: string,
    private readonly fetchFn: Fetch,
    private readonly timeoutMs: number,
  ) {}

  url(path: string, query?: RequestOptions["query"]): string {
    let u = this.base + path;
    const q = Object.entries(query ?? {}).filter(([, v]) => v !== undefined && v !== null);
    if (q.length)
      u +=
        (u.includes("?") ? "&" : "?") +
        q.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join("&");
    return u;
  }

  /** Sends a request; resolves with the parsed JSON body (undefined for 204/304), throws OutpostError. */
  async json<T>(path: string, o: RequestOptions = {}): Promise<T> {
    return parse<T>(await this.send(path, o));
  }

  /** Sends a request and returns the Response (2xx/304), or throws OutpostError. */
  async send(path: string, o: RequestOptions = {}): Promise<Response> {
    const useAuth = o.auth !== false;
    const token = useAuth ? await this.tokens.token() : null;
    const ac = path.startsWith("/v1/app-check/") ? null : this.appCheck;
    let check = (await ac?.get()) ?? null;
    let res = await this.once(path, o, token, check);
    if (res.status === 401 && token) {
      const c = await code(res);
      if (c === "token_expired" || c === "unauthorized") {
        const next = await this.tokens.retryToken(token);
        if (next && next !== token) res = await this.once(path, o, next, check);
      }
    }
    if (ac && res.status === 401 && (await code(res)) === "app_check_failed") {
      check = await ac.retry(check);
      if (check) res = await this.once(path, o, token, check);
    }
    if (!res.ok && res.status !== 304) throw await problem(res);
    return res;
  }

  private async once(path: string, o: RequestOptions, token: string | null, check: string | null): Promise<Response> {
    const headers: Record<string, string> = { accept: "application/json", ...this.headers, ...o.headers };
    let body: BodyInit | undefined;
    if (o.raw !== undefined) {
      body = o.raw as BodyInit;
      headers["content-type"] = o.contentType ?? "application/octet-stream";
    } else if (o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers["content-type"] = "application/json";
    }
    if (token) headers.authorization = `Bearer ${token}`;
    if (check) headers["outpost-app-check"] = check;
    if (o.idempotencyKey) headers["idempotency-key"] = o.idempotencyKey;
    if (this.bookmark) headers["outpost-bookmark"] = this.bookmark;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), this.timeoutMs);
    const onAbort = () => ctl.abort();
    o.signal?.addEventListener("abort", onAbort);
    try {
      const res = await this.fetchFn(this.url(path, o.query), {
        method: o.method ?? "GET",
        headers,
        body,
        signal: ctl.signal,
      });
      const bm = res.headers.get("outpost-bookmark");
      if (bm) this.bookmark = bm;
      return res;
    } catch (e) {
      if (o.signal?.aborted) throw new OutpostError(0, "aborted", "The request was aborted.", { cause: e });
      if (ctl.signal.aborted)
        throw new OutpostError(0, "timeout", `No answer within ${this.timeoutMs} ms.`, { cause: e });
      throw new OutpostError(0, "network_error", `Network error: ${e instanceof Error ? e.message : String(e)}`, {
        cause: e,
      });
    } finally {
      clearTimeout(timer);
      o.signal?.removeEventListener("abort", onAbort);
    }
  }
}

/** The problem code of an error answer (read from a copy: the body stays readable). */
const code = async (res: Response) =>
  (
    (await res
      .clone()
      .json()
      .catch(() => null)) as { code?: string } | null
  )?.code;

async function parse<T>(res: Response): Promise<T> {
  if (res.status === 204 || res.status === 304) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/** An error answer as OutpostError (problem+json when the server sent one). */
async function problem(res: Response): Promise<OutpostError> {
  let p: { code?: string; detail?: string; title?: string; errors?: FieldError[]; [k: string]: unknown } = {};
  try {
    p = JSON.parse(await res.text());
  } catch {
    // not JSON (a proxy's error page)
  }
  const ra = res.headers.get("retry-after");
  // Outpost's 426 body always holds detail, storeUrl (string or null) and minVersion.
  if (p.code === "upgrade_required")
    return new UpgradeRequiredError(
      p.detail as string,
      p.storeUrl as string | null,
      p.minVersion as string,
      res.headers.get("x-request-id"),
    );
  return new OutpostError(
    res.status,
    p.code ?? (res.status >= 500 ? "internal" : `http_${res.status}`),
    p.detail ?? p.title ?? `HTTP ${res.status}`,
    {
      errors: Array.isArray(p.errors) ? p.errors : [],
      requestId: res.headers.get("x-request-id"),
      retryAfter: ra !== null && /^\d+$/.test(ra) ? Number(ra) : null,
    },
  );
}

/** Test harness: call the Worker like an app would, and make signed-up users. */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface CallOptions {
  method?: string;
  body?: unknown;
  /** Raw body (sent as is, with `headers` content-type). */
  raw?: BodyInit;
  token?: string | null;
  headers?: Record<string, string>;
  /** Client IP (rate limits are per IP). Defaults to a fresh random address per call. */
  ip?: string;
  /**
   * Also wait for the work the request left in `waitUntil` (mail sent after the response, say):
   * the Worker is called with an execution context the test awaits.
   */
  settle?: boolean;
}

let ipCounter = 0;
/** A new client IP, so rate-limit budgets don't leak between unrelated tests. */
export const freshIp = () => `10.${(ipCounter >> 16) & 255}.${(++ipCounter >> 8) & 255}.${ipCounter & 255}`;

/** Calls the Worker's fetch handler and parses JSON / problem+json bodies. */
export async function api<T = any>(path: string, opts: CallOptions = {}): Promise<ApiResponse<T>> {
  const headers = new Headers(opts.headers);
  headers.set("cf-connecting-ip", opts.ip ?? freshIp());
  if (opts.token) headers.set("authorization", `Bearer ${opts.token}`);
  let body: BodyInit | undefined = opts.raw;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
  }
  const req = new Request(`https://outpost.test${path}`, {
    method: opts.method ?? (body ? "POST" : "GET"),
    headers,
    body,
    // A redirect is the answer under test (OAuth), never followed.
    redirect: "manual",
  });
  let res: Response;
  let text: string;
  if (opts.settle) {
    const worker = (await import("../../src/index")).default;
    const ctx = createExecutionContext();
    res = await worker.fetch(req, env, ctx as ExecutionContext);
    text = await res.text();
    await waitOnExecutionContext(ctx);
  } else {
    res = await exports.default.fetch(req);
    text = await res.text();
  }
  const ct = res.headers.get("content-type") ?? "";
  return {
    status: res.status,
    headers: res.headers,
    text,
    body: ct.includes("json") && text ? JSON.parse(text) : (text as unknown as T),
  };
}

/**
 * The Worker's answer to `req` with some bindings replaced (a limiter that refuses, another
 * configuration), once the request's `waitUntil` work has finished.
 */
export async function fetchWithEnv(req: Request, overrides: Partial<Env>): Promise<Response> {
  const worker = (await import("../../src/index")).default;
  const ctx = createExecutionContext();
  const res = await worker.fetch(req, { ...env, ...overrides }, ctx as ExecutionContext);
  await waitOnExecutionContext(ctx);
  return res;
}

let n = 0;
/** A unique email address for this test run. */
export const uniqueEmail = (tag = "user") => `${tag}.${Date.now().toString(36)}.${++n}@example.com`;

export interface TestUser {
  id: string;
  email: string;
  password: string;
  accessToken: string;
  refreshToken: string;
}

/** Signs up a new user and returns its tokens. */
export async function signup(opts: { name?: string; email?: string; password?: string } = {}): Promise<TestUser> {
  const email = opts.email ?? uniqueEmail();
  const password = opts.password ?? "correct horse battery";
  const res = await api("/v1/auth/signup", { body: { email, password, ...(opts.name ? { name: opts.name } : {}) } });
  if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${res.text}`);
  return {
    id: res.body.user.id,
    email,
    password,
    accessToken: res.body.session.accessToken,
    refreshToken: res.body.session.refreshToken,
  };
}

/** The service key, for server-to-server calls. */
export const serviceKey = () => env.SERVICE_KEY;

/** Checks the common shape of a problem+json answer and returns its body. */
export function expectProblem(res: ApiResponse, status: number, code: string) {
  if (
    res.status !== status ||
    res.body?.code !== code ||
    !(res.headers.get("content-type") ?? "").startsWith("application/problem+json")
  ) {
    throw new Error(
      `expected ${status} ${code} problem+json, got ${res.status} ${res.headers.get("content-type")} ${res.text}`,
    );
  }
  return res.body as {
    type: string;
    title: string;
    status: number;
    detail: string;
    code: string;
    errors?: { path: string; message: string }[];
  };
}

/** Requests the stand-in server recorded under `prefix`. */
export async function standinRequests(
  prefix: string,
): Promise<
  { method: string; path: string; headers: Record<string, string>; body: string; query: Record<string, string> }[]
> {
  const res = await fetch(`${env.STANDIN_URL}/_requests?prefix=${encodeURIComponent(prefix)}`);
  return res.json();
}

/**
 * The operations the OpenAPI document lists at `prefixes` or under them, as sorted
 * "METHOD /path" strings, so a feature test can compare its routes exactly (none missing, none extra).
 */
export async function documentedOperations(...prefixes: string[]): Promise<string[]> {
  const doc = await api<{ paths: Record<string, Record<string, unknown>> }>("/v1/openapi.json");
  if (doc.status !== 200) throw new Error(`GET /v1/openapi.json → ${doc.status}`);
  const out: string[] = [];
  for (const [path, ops] of Object.entries(doc.body.paths)) {
    if (!prefixes.some((p) => path === p || path.startsWith(`${p}/`))) continue;
    for (const method of Object.keys(ops)) out.push(`${method.toUpperCase()} ${path}`);
  }
  return out.sort();
}

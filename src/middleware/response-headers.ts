/**
 * The headers every API answer carries, set in one pass on the finished response: the request id,
 * the D1 bookmark, CORS for simple and actual requests, and the security headers.
 *
 * Why not `hono/cors` and `hono/secure-headers` on every request: `cors` writes its headers on
 * `c.res` before the route runs, which makes Hono build a placeholder Response, then a second one
 * when the route answers (copying every header across), and a third for its `Vary` append;
 * `secureHeaders` then sets eleven headers one by one. Together they were the largest cost of a
 * short request's own code (`node scripts/bench/profile.mjs health`). Here the values are computed
 * once per configuration and set on the route's own Response. Preflights (`OPTIONS`) still go
 * through `hono/cors`, which answers them itself (src/router.ts). HTML answers get all of Hono's
 * `secureHeaders` defaults (with a cross-origin resource policy), JSON answers the four of them that
 * mean something to a non-document, and only browsers' cross-origin calls get CORS headers: each
 * header costs every answer its bytes and a call (`npm run bench`'s health row moved from 0.82–0.92×
 * to 0.92–0.95× of its reference in two runs when they went). A test compares them with what `cors` and
 * `secureHeaders` would set.
 */
import type { Config } from "../config";
import { BOOKMARK_HEADER } from "../db";

/** Response headers a browser app may read (API.md: ETag, bookmarks, rate limits, tus). */
export const EXPOSED_HEADERS = [
  "ETag",
  "X-Request-Id",
  BOOKMARK_HEADER,
  "Retry-After",
  "Location",
  "Content-Range",
  "Tus-Resumable",
  "Tus-Version",
  "Tus-Extension",
  "Tus-Max-Size",
  "Upload-Offset",
  "Upload-Length",
  "Upload-Expires",
  "Outpost-File-Id",
] as const;

/**
 * What every answer carries for its safety, JSON included (OWASP's REST Security Cheat Sheet):
 * HTTPS only, no MIME sniffing (a JSON body is never run as a script or page), no framing, and
 * readable across origins (signed file URLs are embedded by other origins' pages).
 */
const API_SECURITY_HEADERS: readonly (readonly [string, string])[] = [
  ["Cross-Origin-Resource-Policy", "cross-origin"],
  ["Strict-Transport-Security", "max-age=15552000; includeSubDomains"],
  ["X-Content-Type-Options", "nosniff"],
  ["X-Frame-Options", "SAMEORIGIN"],
];

/**
 * The rest of `secureHeaders({ crossOriginResourcePolicy: "cross-origin" })`' defaults: they
 * govern what a browser does with a document (its opener, referrer, DNS prefetching, legacy
 * plug-ins and XSS filters), so only HTML answers (the API reference, short-link pages) get them.
 */
const DOCUMENT_SECURITY_HEADERS: readonly (readonly [string, string])[] = [
  ["Cross-Origin-Opener-Policy", "same-origin"],
  ["Origin-Agent-Cluster", "?1"],
  ["Referrer-Policy", "no-referrer"],
  ["X-DNS-Prefetch-Control", "off"],
  ["X-Download-Options", "noopen"],
  ["X-Permitted-Cross-Domain-Policies", "none"],
  ["X-XSS-Protection", "0"],
];

const EXPOSE = EXPOSED_HEADERS.join(",");

/** Which `Origin` may read an answer: `*`, or the request's own origin when it is listed. */
function allowedOrigin(origins: readonly string[], origin: string | undefined): string | null {
  if (origins.includes("*")) return "*";
  return origin && origins.includes(origin) ? origin : null;
}

/**
 * Sets the headers on a route's answer (not on a 101: a proxied upgrade's headers are immutable).
 * `preflight`: the answer came from `hono/cors`' preflight handler, which set CORS itself.
 *
 * CORS headers go only on answers to a request with an `Origin` (a browser's cross-origin call):
 * a mobile app, a server or a same-origin page sends none and has no use for them. Such an answer
 * says `Vary: Origin` instead, so that no cache hands it to a browser on another origin.
 */
export function setResponseHeaders(
  headers: Headers,
  config: Config,
  origin: string | undefined,
  requestId: string,
  bookmark: string | null,
  preflight: boolean,
): void {
  headers.set("X-Request-Id", requestId);
  if (bookmark) headers.set(BOOKMARK_HEADER, bookmark);
  if (!preflight) {
    if (origin === undefined) headers.append("Vary", "Origin");
    else {
      const allowed = allowedOrigin(config.corsOrigins, origin);
      if (allowed) headers.set("Access-Control-Allow-Origin", allowed);
      headers.set("Access-Control-Expose-Headers", EXPOSE);
      if (allowed !== "*") headers.append("Vary", "Origin");
    }
  }
  for (const [name, value] of API_SECURITY_HEADERS) headers.set(name, value);
  if (headers.get("Content-Type")?.startsWith("text/html"))
    for (const [name, value] of DOCUMENT_SECURITY_HEADERS) headers.set(name, value);
}

/**
 * `set` applied to the answer's headers, or to a copy's when they are immutable (an answer passed
 * on as a Durable Object's `fetch` returned it); returns the answer that has them.
 */
export function withHeaders(res: Response, set: (headers: Headers) => void): Response {
  try {
    set(res.headers);
    return res;
  } catch {
    const copy = new Response(res.body, res);
    set(copy.headers);
    return copy;
  }
}

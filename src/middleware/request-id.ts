/**
 * The request id: always made here (a UUID), never taken from the client; it is the one in logs,
 * problem `instance`s and audit rows. A client's own valid `X-Request-Id` (word characters, `-`
 * and `=`, at most 128) is kept apart as `clientRequestId` (the audit log records both) and echoed
 * in the response's `X-Request-Id`, as the contract says; without one, that header is ours.
 */
import type { MiddlewareHandler } from "hono";

const CLIENT_ID = /^[\w\-=]{1,128}$/;

interface RequestIdVars {
  Variables: { requestId: string; clientRequestId: string | null };
}

/** A new request id, and the client's own when `X-Request-Id` is a valid one. */
export function newRequestIds(sent: string | undefined): { requestId: string; clientRequestId: string | null } {
  return { requestId: crypto.randomUUID(), clientRequestId: sent !== undefined && CLIENT_ID.test(sent) ? sent : null };
}

/**
 * The id middleware (the console's; the API sets its ids and headers in one pass, src/router.ts).
 * Upgrades get no header: a 101 proxied from a Durable Object has immutable headers.
 */
export function requestIds<E extends RequestIdVars>(): MiddlewareHandler<E> {
  return async (c, next) => {
    const { requestId, clientRequestId } = newRequestIds(c.req.header("x-request-id"));
    c.set("requestId", requestId);
    c.set("clientRequestId", clientRequestId);
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") c.header("X-Request-Id", clientRequestId ?? requestId);
    await next();
  };
}

/**
 * The request id: always made here (a UUID), never taken from the client, and sent back as
 * `X-Request-Id`. A client's own `X-Request-Id` (word characters, `-` and `=`, at most 128) is kept
 * apart as `clientRequestId`, for the audit log; anything else it sends there is dropped.
 */
import type { MiddlewareHandler } from "hono";

const CLIENT_ID = /^[\w\-=]{1,128}$/;

interface RequestIdVars {
  Variables: { requestId: string; clientRequestId: string | null };
}

/** The id middleware. Upgrades get no header: a 101 proxied from a Durable Object has immutable headers. */
export function requestIds<E extends RequestIdVars>(): MiddlewareHandler<E> {
  return async (c, next) => {
    const id = crypto.randomUUID();
    const sent = c.req.header("x-request-id");
    c.set("requestId", id);
    c.set("clientRequestId", sent !== undefined && CLIENT_ID.test(sent) ? sent : null);
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") c.header("X-Request-Id", id);
    await next();
  };
}

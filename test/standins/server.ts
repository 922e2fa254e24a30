/**
 * One HTTP server on 127.0.0.1 that plays the outside services Outpost talks to. Each stand-in
 * owns a path prefix (`/oidc`, `/mail`, ...) and answers like the real service; every request is
 * recorded so tests can check exactly what Outpost sent (`GET /_requests?prefix=/mail`).
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { apnsStandin } from "./apns";
import { expoStandin } from "./expo";
import { fcmStandin } from "./fcm";
import { mailStandin } from "./mail";
import { oauthStandin } from "./oauth";
import { oidcStandin } from "./oidc";
import { openapiStandin } from "./openapi";
import { turnstileStandin } from "./turnstile";
import { webhookStandins } from "./webhooks";

export interface StandinRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: string;
  at: number;
}

export interface StandinReply {
  status: number;
  headers?: Record<string, string>;
  body?: string | object;
}

/** A stand-in: answers the requests under its prefix, or returns null to fall through (404). */
export type Standin = {
  prefix: string;
  handle(req: StandinRequest): Promise<StandinReply | null> | StandinReply | null;
};

const standins: Standin[] = [
  oidcStandin(),
  mailStandin(),
  openapiStandin(),
  fcmStandin(),
  apnsStandin(),
  expoStandin(),
  turnstileStandin(),
  ...webhookStandins(),
  // Last: its prefix is "/" (it takes /oidc/issuer/*, /github/*, /apple/*).
  oauthStandin(),
];

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export async function startStandins(): Promise<{ url: string; close(): Promise<void> }> {
  const log: StandinRequest[] = [];
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? "/", "http://standin");
      const body = await readBody(req);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
      const r: StandinRequest = {
        method: req.method ?? "GET",
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers,
        body,
        at: Date.now(),
      };
      let reply: StandinReply | null = null;
      if (r.path === "/_requests") {
        const prefix = r.query.prefix ?? "/";
        reply = { status: 200, body: log.filter((x) => x.path.startsWith(prefix)) };
      } else {
        log.push(r);
        for (const s of standins.filter((x) => r.path.startsWith(x.prefix))) {
          reply = await s.handle(r);
          if (reply) break;
        }
      }
      reply ??= { status: 404, body: { error: "no stand-in for this path" } };
      const isJson = typeof reply.body === "object";
      res.writeHead(reply.status, { ...(isJson ? { "content-type": "application/json" } : {}), ...reply.headers });
      res.end(isJson ? JSON.stringify(reply.body) : (reply.body ?? ""));
    } catch (e) {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(String(e));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

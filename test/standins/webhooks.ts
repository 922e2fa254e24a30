/**
 * A webhook receiver: `POST /webhooks/<name>` answers 200 (the server records method, headers and raw
 * body: read them with `GET /_requests?prefix=/webhooks/<name>`). `PUT /webhook-control/<name>` with `{
 * failTimes?, status?, redirectTo?, delayMs? }` steers the next answers of `<name>`: `status` (default 500)
 * for the next `failTimes` requests, a 302 to `redirectTo` on every request, or an answer after `delayMs`.
 */
import type { Standin, StandinReply } from "./server";

interface Behaviour {
  failTimes: number;
  status: number;
  redirectTo: string | null;
  delayMs: number;
}

export function webhookStandins(): Standin[] {
  const behaviours = new Map<string, Behaviour>();
  const receiver: Standin = {
    prefix: "/webhooks/",
    async handle(req) {
      const name = /^\/webhooks\/([^/]+)$/.exec(req.path)?.[1];
      if (!name || req.method !== "POST") return null;
      const b = behaviours.get(name);
      if (b?.delayMs) await new Promise((resolve) => setTimeout(resolve, b.delayMs));
      if (b?.redirectTo) return { status: 302, headers: { location: b.redirectTo }, body: "" };
      if (b && b.failTimes > 0) {
        b.failTimes--;
        return { status: b.status, body: { error: "told to fail" } };
      }
      return { status: 200, body: { received: true } } satisfies StandinReply;
    },
  };
  const control: Standin = {
    prefix: "/webhook-control/",
    handle(req) {
      const name = /^\/webhook-control\/([^/]+)$/.exec(req.path)?.[1];
      if (!name || req.method !== "PUT") return null;
      const o = JSON.parse(req.body || "{}") as Partial<Behaviour>;
      behaviours.set(name, {
        failTimes: o.failTimes ?? 0,
        status: o.status ?? 500,
        redirectTo: o.redirectTo ?? null,
        delayMs: o.delayMs ?? 0,
      });
      return { status: 204 };
    },
  };
  return [receiver, control];
}

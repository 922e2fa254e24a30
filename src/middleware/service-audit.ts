/**
 * The service key's trail on ordinary routes (issue 23.4): its writes and grants there leave an audit
 * row, in the write's own batch where the write is a D1 batch.
 */
import type { SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Context } from "hono";
import type { AppEnv } from "../env";
import { type AuditEvent, SERVICE_ACTOR } from "../lifecycle";

type ServiceAudit = (
  e: Omit<AuditEvent, "actorId" | "requestId" | "clientRequestId">,
  when?: SQL,
) => BatchItem<"sqlite">;

/** The audit statement of this request's service-key action; undefined when a user (or nobody) calls. */
export function serviceAudit(c: Context<AppEnv>): ServiceAudit | undefined {
  if (c.get("principal")?.kind !== "service") return undefined;
  const db = c.get("db");
  const lifecycle = c.get("lifecycle");
  const requestId = c.get("requestId");
  const clientRequestId = c.get("clientRequestId");
  return (e, when) => lifecycle.auditStatement(db, { actorId: SERVICE_ACTOR, requestId, clientRequestId, ...e }, when);
}

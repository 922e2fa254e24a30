/**
 * What uploads share with the app's logic: the `files` before create hook runs before any byte is
 * stored (it may refuse the upload), and the statement that makes a file ready returns whether
 * anyone listens to `files.create` (an after hook, a webhook): only then is a drain queued.
 */
import type { Context } from "hono";
import type { AppEnv } from "../../env";
import { listenedSql, runBefore, sendDrain } from "../logic";

/** Runs the app's `files` before create hook for an upload the caller is about to send. */
export async function beforeNewFile(
  c: Context<AppEnv>,
  data: { name: string; contentType: string; size: number | null; visibility: string; teamId: string | null },
): Promise<void> {
  const p = c.get("principal");
  await runBefore(
    "files",
    "create",
    { env: c.env, db: c.get("db"), waitUntil: (w) => c.executionCtx.waitUntil(w) },
    p?.kind === "user" ? { kind: "user", userId: p.userId } : { kind: "service" },
    { data },
  );
}

/** `listened` for the statement that makes a file ready. */
export const fileListened = () => listenedSql(["files.create"]);

/** Queues a drain when the ready statement said someone listens. */
export async function fileCreated(env: Env, listened: unknown): Promise<void> {
  if (listened) await sendDrain(env);
}

/**
 * Runs the app's before hooks for every writer (routes, `/v1/batch`, the console, other hooks):
 * the hook may return changed data or `refuse()`; a refusal becomes the request's problem+json and
 * nothing is written (the writer calls this before it builds its statements).
 */
import { AppError } from "../../errors";
import type { Caller } from "./define";
import { Refusal } from "./define";
import { beforeHook } from "./registry";
import type { AppServices, ServiceContext } from "./types";

/** Hooks that write through `app` run those collections' hooks; this deep, the chain is refused. */
const MAX_DEPTH = 4;

type ServicesFactory = (ctx: ServiceContext) => AppServices;
let makeServices: ServicesFactory | null = null;

/** Set once by the root (src/lifecycle-parts.ts): how `app` is made for hooks. */
export function provideServices(f: ServicesFactory): void {
  makeServices = f;
}

/** The services a hook or schedule gets for this context. */
export function servicesFor(ctx: ServiceContext): AppServices {
  if (!makeServices) throw new Error("app services were not provided (src/lifecycle-parts.ts)");
  return makeServices(ctx);
}

/** True when `source` declares a before hook for `kind` (writers skip all hook work otherwise). */
export const hasBefore = (source: string, kind: "create" | "update" | "delete") =>
  beforeHook(source, kind) !== undefined;

/**
 * Runs `source`'s before hook for `kind` with `arg` (plus `caller` and `app`). Returns the data the
 * write goes on with: the hook's return value when it returned an object, else `arg.data`.
 */
export async function runBefore<D extends Record<string, unknown> | undefined>(
  source: string,
  kind: "create" | "update" | "delete",
  ctx: ServiceContext,
  caller: Caller,
  arg: { data?: D; id?: string; current?: () => Promise<unknown> },
): Promise<D> {
  const hook = beforeHook(source, kind);
  if (!hook) return arg.data as D;
  const depth = ctx.depth ?? 0;
  if (depth >= MAX_DEPTH)
    throw new AppError("conflict", `Hooks writing through other hooks went ${MAX_DEPTH} deep; nothing was written.`);
  let cached: Promise<unknown> | undefined;
  const current = arg.current ? () => (cached ??= arg.current!()) : undefined;
  try {
    const out = await (hook as (x: unknown) => unknown)({
      ...arg,
      ...(current ? { current } : {}),
      // `data` itself: a hook that edits it in place and returns nothing changes the write too.
      ...(arg.data ? { data: arg.data } : {}),
      caller,
      app: servicesFor({ ...ctx, depth: depth + 1 }),
    });
    if (out && typeof out === "object" && arg.data) return out as D;
    return arg.data as D;
  } catch (e) {
    if (e instanceof Refusal) throw AppError.refusal(e.status, e.code, e.message);
    throw e;
  }
}

/** The caller of a write, as hooks see it. */
export function callerOf(p: { kind: "user"; userId: string } | { kind: "service" } | null): Caller {
  if (!p) return { kind: "anonymous" };
  return p.kind === "user" ? { kind: "user", userId: p.userId } : { kind: "service" };
}

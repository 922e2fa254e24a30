/**
 * `client.app`: the app's own routes under `/v1/app/` (the server's src/app/routes.ts), typed from
 * the generated `AppRoutes` (`npm run client:types`): `client.app.post("/lists/{id}/clear-done", {
 * params: { id } })`. Same session, errors and bookmark as the rest of the SDK; writes carry an
 * Idempotency-Key (a new one per call unless given).
 */
import { enc } from "./core.js";
import type { Http } from "./http.js";
import { uuid } from "./util.js";

type Scalar = string | number | boolean;
/** One operation of an app route, as `npm run client:types` writes it. */
export interface AppOperation {
  params?: { [name: string]: Scalar };
  query?: { [name: string]: Scalar | null | undefined };
  body?: unknown;
  response: unknown;
}
export type AppMethod = "get" | "post" | "put" | "patch" | "delete";
/** Every app route: path (below `/v1/app`) → method → operation. */
export type AppRouteMap = { [path: string]: { [M in AppMethod]?: AppOperation } };
/** Without generated types: any path, untyped params, body and answer. */
export type UntypedAppRoutes = { [path: string]: { [M in AppMethod]: Required<AppOperation> } };

/** The paths of `A` that answer `M`. */
export type AppPath<A extends AppRouteMap, M extends AppMethod> = {
  [P in keyof A & string]: A[P][M] extends AppOperation ? P : never;
}[keyof A & string];
/** No keys: an object type all of whose keys are optional is assignable to it. */
type NoKeys = Record<never, never>;
type Op<A extends AppRouteMap, P extends keyof A, M extends AppMethod> = A[P][M] & AppOperation;
type Part<K extends string, T> = [T] extends [undefined]
  ? { [k in K]?: never }
  : NoKeys extends T
    ? { [k in K]?: T }
    : { [k in K]: T };

/** What a call takes: the route's `params`, `query` and `body` (required where the route requires them). */
export type AppCallOptions<O extends AppOperation> = Part<"params", O["params"]> &
  Part<"query", O["query"]> &
  Part<"body", O["body"]> & { idempotencyKey?: string; signal?: AbortSignal; headers?: { [k: string]: string } };
type Args<O extends AppOperation> = NoKeys extends AppCallOptions<O> ? [o?: AppCallOptions<O>] : [o: AppCallOptions<O>];
type Call<A extends AppRouteMap, M extends AppMethod> = <P extends AppPath<A, M>>(
  path: P,
  ...o: Args<Op<A, P, M>>
) => Promise<Op<A, P, M>["response"]>;

export class AppRoutes<A extends AppRouteMap = UntypedAppRoutes> {
  readonly get: Call<A, "get">;
  readonly post: Call<A, "post">;
  readonly put: Call<A, "put">;
  readonly patch: Call<A, "patch">;
  readonly delete: Call<A, "delete">;

  constructor(http: Http) {
    const call =
      (method: AppMethod) =>
      (path: string, o: { params?: AppOperation["params"] } & Omit<AppCallOptions<AppOperation>, "params"> = {}) => {
        const url = path.replace(/\{([^}]+)\}/g, (_, name: string) => {
          const v = o.params?.[name];
          if (v === undefined) throw new TypeError(`client.app: ${path} needs params.${name}`);
          return enc(String(v));
        });
        return http.json(`/v1/app${url}`, {
          method: method.toUpperCase(),
          ...(o.query && { query: o.query }),
          ...(o.body !== undefined && { body: o.body }),
          ...(o.headers && { headers: o.headers }),
          ...(o.signal && { signal: o.signal }),
          ...(method !== "get" && { idempotencyKey: o.idempotencyKey ?? uuid() }),
        });
      };
    this.get = call("get") as Call<A, "get">;
    this.post = call("post") as Call<A, "post">;
    this.put = call("put") as Call<A, "put">;
    this.patch = call("patch") as Call<A, "patch">;
    this.delete = call("delete") as Call<A, "delete">;
  }
}

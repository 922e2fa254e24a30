/**
 * Every documented route that needs a token, taken from the OpenAPI document (so a new route is
 * covered the day it is documented): no token, garbage, a foreign or unsigned token, a tampered
 * payload and an expired token all get 401 problem+json, before the route does anything.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { api, signup, type TestUser } from "../helpers/api";
import { expectStrangersRefused } from "../helpers/refusals";

interface Op {
  method: string;
  path: string;
  /** Documented as open to anonymous callers too (`security: [{}, { bearerAuth: [] }]`). */
  anonymous: boolean;
}

let victim: TestUser;
const ops: Op[] = [];
beforeAll(async () => {
  victim = await signup();
  const { body } = await api("/v1/openapi.json");
  for (const [path, methods] of Object.entries<Record<string, { security?: unknown[] }>>(body.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      if (op.security && op.security.length > 0) {
        ops.push({
          method: method.toUpperCase(),
          path,
          anonymous: op.security.some((s) => Object.keys(s as object).length === 0),
        });
      }
    }
  }
});

/** A concrete path: every `{param}` becomes a well-formed id that names nothing. */
const concrete = (path: string) => path.replace(/\{[^}]+\}/g, "01900000-0000-7000-8000-000000000001");

describe("every route that takes a token refuses bad ones", () => {
  it("found the authenticated routes in the document", () => {
    expect(ops.length).toBeGreaterThan(30);
    expect(ops).toContainEqual({ method: "GET", path: "/v1/me", anonymous: false });
    expect(ops).toContainEqual({ method: "POST", path: "/v1/admin/push", anonymous: false });
    expect(ops).toContainEqual({ method: "GET", path: "/v1/files/{id}", anonymous: true });
  });

  it("no token, garbage, foreign key, alg none, tampered, expired → 401 on each", async () => {
    for (const op of ops) {
      const hasBody = ["POST", "PUT", "PATCH"].includes(op.method);
      const socket = /\/(ws|subscribe)$/.test(op.path);
      const headers: Record<string, string> = socket ? { upgrade: "websocket" } : { "tus-resumable": "1.0.0" };
      await expectStrangersRefused(
        { method: op.method, path: concrete(op.path), opts: { ...(hasBody ? { body: {} } : {}), headers } },
        victim,
        { anonymousAllowed: op.anonymous },
      );
    }
  });
});

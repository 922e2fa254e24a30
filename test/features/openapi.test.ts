import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../src/router";
import { api } from "../helpers/api";

describe("OpenAPI document", () => {
  it("passes an outside OpenAPI 3.1 validator", async () => {
    const doc = await api("/v1/openapi.json");
    expect(doc.status).toBe(200);
    const res = await fetch(`${env.STANDIN_URL}/openapi/validate`, { method: "POST", body: doc.text });
    const verdict = (await res.json()) as { valid: boolean; errors: string };
    expect(verdict.errors).toBe("");
    expect(verdict.valid).toBe(true);
  });

  it("the validator does reject a broken document (so the check above can fail)", async () => {
    const broken = { openapi: "3.1.0", paths: { "/x/{id}": { get: { responses: { 200: { description: "ok" } } } } } };
    const res = await fetch(`${env.STANDIN_URL}/openapi/validate`, { method: "POST", body: JSON.stringify(broken) });
    expect(((await res.json()) as { valid: boolean }).valid).toBe(false);
  });

  it("documents every route the app serves, and nothing it does not serve", async () => {
    const { body } = await api("/v1/openapi.json");
    const documented = new Set<string>();
    for (const [path, ops] of Object.entries<Record<string, unknown>>(body.paths)) {
      for (const method of Object.keys(ops)) documented.add(`${method.toUpperCase()} ${path}`);
    }
    // Every handler registered on the app (middleware is registered as ALL), in OpenAPI's path syntax.
    const served = new Set(
      app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, "{$1}")}`),
    );
    const undocumented = [...served].filter(
      (r) => !documented.has(r) && r !== "GET /v1/openapi.json" && r !== "GET /docs",
    );
    expect(undocumented).toEqual([]);
    expect([...documented].filter((r) => !served.has(r))).toEqual([]);
    expect(served.size).toBeGreaterThan(40);
  });

  it("documents requests with the schemas that validate them", async () => {
    const { body } = await api("/v1/openapi.json");
    const signup = body.paths["/v1/auth/signup"].post;
    const schema = signup.requestBody.content["application/json"].schema;
    expect(schema.required).toEqual(expect.arrayContaining(["email", "password"]));
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.password.minLength).toBe(8);
    expect(body.paths["/v1/auth/sessions/{id}"].delete.parameters[0]).toMatchObject({
      name: "id",
      in: "path",
      required: true,
    });
    expect(body.paths["/v1/me"].get.security).toEqual([{ bearerAuth: [] }]);
  });
});

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
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

  it("documents every route the app serves, with the request schemas that validate it", async () => {
    const { body } = await api("/v1/openapi.json");
    const signup = body.paths["/v1/auth/signup"].post;
    const schema = signup.requestBody.content["application/json"].schema;
    expect(schema.required).toEqual(expect.arrayContaining(["email", "password"]));
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.password.minLength).toBe(8);
    expect(body.paths["/v1/auth/sessions/{id}"].delete.parameters[0]).toMatchObject({ name: "id", in: "path", required: true });
    expect(body.paths["/v1/me"].get.security).toEqual([{ bearerAuth: [] }]);
  });
});

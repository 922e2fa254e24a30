/**
 * An outside OpenAPI validator (@readme/openapi-parser, run in Node because it compiles JSON
 * schemas with `new Function`, which workerd forbids): `POST /openapi/validate` with a document
 * answers `{ valid, errors }`.
 */
import { compileErrors, validate } from "@readme/openapi-parser";
import type { Standin } from "./server";

export function openapiStandin(): Standin {
  return {
    prefix: "/openapi",
    async handle(req) {
      if (req.path !== "/openapi/validate" || req.method !== "POST") return null;
      const result = await validate(JSON.parse(req.body), { validate: { errors: { colorize: false } } });
      return {
        status: 200,
        body: { valid: result.valid, errors: result.valid ? "" : compileErrors(result), warnings: result.warnings },
      };
    },
  };
}

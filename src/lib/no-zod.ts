/**
 * Stand-in for `zod/v4/core` in the Worker bundle (wrangler.toml `[alias]`). hono-openapi's schema
 * converters import every vendor lazily; zod is only installed here as a dev tool's dependency, and
 * bundling it would add ~700 KB. Outpost's schemas are valibot, so this path is never taken.
 */
export function toJSONSchema(): never {
  throw new Error("zod schemas are not supported in Outpost; use valibot");
}

// Lets a Node script import the server's TypeScript sources as they are (src/app/collections.ts and
// what it imports): Node strips the types, and this resolve hook lets their extensionless relative
// imports find their .ts files. Used by scripts/search-migration.mjs and client/scripts/gen-types.mjs.
import { registerHooks } from "node:module";

let registered = false;

export function allowTsImports() {
  if (registered) return;
  registered = true;
  registerHooks({
    resolve(spec, ctx, next) {
      try {
        return next(spec, ctx);
      } catch (e) {
        if (/^\.\.?\//.test(spec) && !/\.[cm]?[jt]s$/.test(spec)) return next(`${spec}.ts`, ctx);
        throw e;
      }
    },
  });
}

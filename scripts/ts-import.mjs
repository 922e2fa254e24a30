// Lets a Node script import the server's TypeScript sources as they are (src/app/collections.ts and
// what it imports): Node strips the types, and this resolve hook lets their extensionless relative
// imports find their .ts files (or a folder's index.ts). Used by scripts/search-migration.mjs and client/scripts/gen-types.mjs.
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
        if (!/^\.\.?\//.test(spec) || /\.[cm]?[jt]s$/.test(spec)) throw e;
        // `./x` is `./x.ts`, or a folder's `./x/index.ts`.
        try {
          return next(`${spec}.ts`, ctx);
        } catch {
          return next(`${spec}/index.ts`, ctx);
        }
      }
    },
  });
}

// The browser files of the API reference (`/docs`), copied from node_modules into `public/`, the
// Workers static-assets directory, so `/docs` works offline and in production without a CDN.
// Called by `npm run dev`, `npm run build:check`, `npm run deploy` and the test config; run alone
// with `node scripts/docs-assets.mjs`.
import { copyFileSync, mkdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(import.meta.dirname, "..");
const FILES = [["node_modules/@scalar/api-reference/dist/browser/standalone.js", "public/docs/scalar.js"]];

/** Copies each asset when missing or older than its source. */
export function ensureDocsAssets() {
  for (const [from, to] of FILES) {
    const src = path.join(root, from);
    const dst = path.join(root, to);
    const srcTime = statSync(src).mtimeMs;
    let dstTime = -1;
    try {
      dstTime = statSync(dst).mtimeMs;
    } catch {
      // not copied yet
    }
    if (dstTime >= srcTime) continue;
    mkdirSync(path.dirname(dst), { recursive: true });
    copyFileSync(src, dst);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) ensureDocsAssets();

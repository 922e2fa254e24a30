// The core's size budget: the SDK bundled and minified as an app bundler would (tus-js-client left
// out: it is the one runtime dependency), gzip-compressed, must stay under 17 KiB (15 KiB through
// v1.1; v1.2 added teams, sign-in kinds, remote config, links, app check, MFA and passkeys).
// Bundling for the "neutral" platform also proves the core imports no Node built-in.
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const BUDGET = 17 * 1024;
const out = await build({
  entryPoints: [new URL("../src/index.ts", import.meta.url).pathname],
  bundle: true,
  minify: true,
  format: "esm",
  platform: "neutral",
  target: "es2020",
  external: ["tus-js-client"],
  write: false,
  logLevel: "error",
});
const code = out.outputFiles[0].contents;
const gz = gzipSync(code, { level: 9 }).length;
const kib = (n) => `${(n / 1024).toFixed(2)} KiB`;
console.log(`@outpost/client core: ${kib(code.length)} minified, ${kib(gz)} gzip (budget ${kib(BUDGET)})`);
if (gz > BUDGET) {
  console.error("over budget");
  process.exit(1);
}

// Type-checks every ```ts / ```tsx snippet of README.md as an app compiles it (tsc --strict):
// each block becomes a module in typecheck/readme/ (generated, not committed), the names a
// snippet takes from its surroundings (url, email, AsyncStorage...) are declared in
// typecheck/readme-env.d.ts, and `@outpost/client` resolves to this package's built dist/.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

const here = path.resolve(import.meta.dirname, "..");
const out = path.join(here, "typecheck", "readme");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const md = readFileSync(path.join(here, "README.md"), "utf8");
const blocks = [...md.matchAll(/^```(ts|tsx)\n([\s\S]*?)^```$/gm)];
blocks.forEach(([, lang, code], i) => {
  const line = md.slice(0, md.indexOf(code)).split("\n").length;
  writeFileSync(
    path.join(out, `block-${String(i + 1).padStart(2, "0")}.${lang}`),
    `// README.md line ${line}\n${code}export {};\n`,
  );
});
copyFileSync(path.join(here, "examples", "outpost-types.ts"), path.join(out, "outpost-types.ts"));

const tsc = path.join(here, "node_modules", "typescript", "bin", "tsc");
const r = spawnSync(process.execPath, [tsc, "-p", path.join(here, "typecheck", "tsconfig.readme.json")], {
  encoding: "utf8",
});
process.stdout.write(r.stdout);
process.stderr.write(r.stderr);
if (r.status !== 0) {
  console.error(`readme-check: README snippets do not compile (${blocks.length} blocks, see typecheck/readme/)`);
  process.exit(1);
}
console.log(`readme-check: ${blocks.length} README snippets compile under tsc --strict`);

// `npm run client:types`: writes the app's collection types for @outpost/client from the
// declarations in src/app/collections.ts (the same ones the server validates with), or from a
// server's OpenAPI document (`--openapi <url or file>`), for apps that do not have the source.
//
// Paths are the caller's: run from the app's folder (`npm --prefix <outpost repo> run client:types`),
// the default output and `--out` are resolved there (INIT_CWD), not in this repo.
//
//   npm run client:types                           → ./outpost-types.ts
//   npm run client:types -- --out app/outpost-types.ts
//   npm run client:types -- --out app/outpost-types.js  → .js (defaults) + .d.ts (types): imports in plain Node
//   npm run client:types -- --openapi https://api.example.com/v1/openapi.json --out ...
//   npm run client:types -- --collections path/to/collections.ts   → declarations from another file
//   npm run client:types -- --routes path/to/routes.ts   → the app routes (AppRoutes) from another file
//
// Besides the collections, `AppRoutes` types the app's own routes under /v1/app (src/app/routes.ts, or
// the document's /v1/app paths): params, query, body and answer of each, for `client.app`.
// `AppConfig` types the remote config's keys (src/app/config.ts, or the document's /v1/config answer),
// for `client.config`.
//
// A team-scoped collection (`scope: "team"`; from OpenAPI: a create body that requires `teamId`) gets
// `teamId: string` in its record fields and its create input; the SDK keeps it out of update and replace.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { allowTsImports } from "../../scripts/ts-import.mjs";

const clientDir = path.resolve(import.meta.dirname, "..");
const root = path.resolve(clientDir, "..");
const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
/** The caller's folder: where `npm run` was typed (INIT_CWD), not the repo npm switched to. */
const cwd = process.env.INIT_CWD ?? process.cwd();
const out = path.resolve(cwd, opt("--out") ?? "outpost-types.ts");
const asJs = /\.[cm]?js$/.test(out);
const openapi = opt("--openapi");
const declarations = path.resolve(cwd, opt("--collections") ?? path.join(root, "src", "app", "collections.ts"));

/**
 * @typedef {{ kind: "string" | "integer" | "number" | "boolean" | "stringArray" | "ref" | "count", nullable: boolean, hasDefault:
 * boolean, default?: unknown, ref?: string }} FieldSpec
 * @typedef {{ team: boolean, fields: Record<string, FieldSpec> }} CollectionSpec
 */

/**
 * Collections declared in src/app/collections.ts, imported as they are: Node strips the types, and a
 * resolve hook lets the extensionless relative imports of the server's sources find their .ts files.
 */
async function fromSource() {
  allowTsImports();
  const mod = await import(pathToFileURL(declarations).href);
  const MARK = Symbol.for("outpost.collection");
  const cols = {};
  for (const value of Object.values(mod)) {
    const meta = value && typeof value === "object" ? value[MARK] : undefined;
    if (!meta) continue;
    cols[meta.name] = {
      team: meta.scope === "team",
      fields: Object.fromEntries(
        Object.entries(meta.fields).map(([k, f]) => [
          k,
          {
            kind: f.kind,
            nullable: f.nullable,
            hasDefault: f.default !== undefined,
            default: f.default,
            ...(f.ref ? { ref: f.ref.target } : {}),
          },
        ]),
      ),
    };
  }
  return cols;
}

/** A schema with its `$ref`s followed within `doc`. */
const derefIn = (doc) => {
  const deref = (s) =>
    s?.$ref
      ? deref(
          s.$ref
            .split("/")
            .slice(1)
            .reduce((o, k) => o[k], doc),
        )
      : s;
  return deref;
};

/** Collections from an OpenAPI document: each `POST /v1/collections/{name}/records` body and response. */
function fromOpenApi(doc) {
  const deref = derefIn(doc);
  const cols = {};
  for (const [p, item] of Object.entries(doc.paths ?? {})) {
    const m = /^\/v1\/collections\/([a-z][a-z0-9_]*)\/records$/.exec(p);
    if (!m || !item.post) continue;
    const body = deref(item.post.requestBody?.content?.["application/json"]?.schema) ?? {};
    const required = new Set(body.required ?? []);
    // `teamId` is a system field of team-scoped records: typed apart, not as a declared field.
    const fields = Object.fromEntries(
      Object.entries(body.properties ?? {})
        .filter(([k]) => k !== "id" && k !== "teamId")
        .map(([k, s0]) => {
          const s = deref(s0);
          const variants = (s.anyOf ?? s.oneOf ?? [s]).map(deref);
          const types = variants.flatMap((v) => (Array.isArray(v.type) ? v.type : [v.type]));
          const nullable = types.includes("null");
          const kind = types.includes("array")
            ? "stringArray"
            : types.includes("integer")
              ? "integer"
              : types.includes("number")
                ? "number"
                : types.includes("boolean")
                  ? "boolean"
                  : "string";
          const hasDefault = !required.has(k);
          return [k, { kind, nullable, hasDefault, ...(s.default !== undefined && { default: s.default }) }];
        }),
    );
    cols[m[1]] = { team: required.has("teamId"), fields };
  }
  return cols;
}

const tsType = (f) =>
  ({
    string: "string",
    ref: "string",
    count: "number",
    integer: "number",
    number: "number",
    boolean: "boolean",
    stringArray: "string[]",
  })[f.kind] + (f.nullable ? " | null" : "");
const pascal = (s) => s.replace(/(^|_)([a-z0-9])/g, (_, __, c) => c.toUpperCase());
/** `notes` → `Note`; names that do not end in a plain plural s stay whole. */
const typeName = (col) => pascal(/[^su]s$/.test(col) && !/ss$/.test(col) ? col.slice(0, -1) : col);

/** The remote config's keys and their value types: from src/app/config.ts, or the /v1/config answer's schema. */
async function configTypes(doc) {
  const kindsOf = (kinds) =>
    kinds.length === 1 && ["string", "number", "boolean"].includes(kinds[0]) ? kinds[0] : kinds.join(" | ");
  const reserved = ["minVersion.ios", "minVersion.android", "storeUrl.ios", "storeUrl.android"];
  const out = Object.fromEntries(reserved.map((k) => [k, "string | null"]));
  if (doc) {
    const schema = doc.paths?.["/v1/config"]?.get?.responses?.["200"]?.content?.["application/json"]?.schema;
    for (const [k, p] of Object.entries(schema?.properties?.values?.properties ?? {})) {
      const kinds = (p.anyOf ?? [p]).map((x) => (x.type === "integer" ? "number" : (x.type ?? "unknown")));
      out[k] ??= kindsOf(kinds.includes("unknown") ? ["unknown"] : kinds);
    }
    return out;
  }
  const file = path.join(path.dirname(declarations), "config.ts");
  let mod = {};
  try {
    mod = await import(pathToFileURL(file).href);
  } catch {
    return out;
  }
  for (const [k, v] of Object.entries(mod.remoteConfig ?? {}))
    out[k] ??= kindsOf([["string", "number", "boolean"].includes(typeof v) ? typeof v : "unknown"]);
  return out;
}

/**
 * The app's own routes (src/app/routes.ts) as the OpenAPI document describes them: the module is
 * bundled with esbuild (Node cannot strip every TypeScript construct the server uses) and its
 * document made with hono-openapi, as the server makes `/v1/openapi.json`.
 */
async function appRoutesDoc() {
  const routes = path.resolve(cwd, opt("--routes") ?? path.join(root, "src", "app", "routes.ts"));
  if (!existsSync(routes)) return { paths: {} };
  const { build } = await import("esbuild");
  const stub = "export class DurableObject {} export class WorkerEntrypoint {} export const env = {};";
  const out = await build({
    stdin: {
      contents: `import { Hono } from "hono"; import { generateSpecs } from "hono-openapi";
import { appRoutes } from ${JSON.stringify(routes)};
export const doc = await generateSpecs(new Hono().route("/v1/app", appRoutes));`,
      resolveDir: root,
      loader: "ts",
    },
    bundle: true,
    platform: "node",
    format: "esm",
    write: false,
    logLevel: "error",
    // As wrangler.toml's [alias]: hono-openapi's other schema vendors stay out.
    alias: { "zod/v4/core": path.join(root, "src", "lib", "no-zod.ts") },
    plugins: [
      {
        name: "cloudflare-stub",
        setup(b) {
          b.onResolve({ filter: /^cloudflare:/ }, (a) => ({ path: a.path, namespace: "cloudflare-stub" }));
          b.onLoad({ filter: /.*/, namespace: "cloudflare-stub" }, () => ({ contents: stub, loader: "js" }));
        },
      },
    ],
  });
  const url = `data:text/javascript;base64,${Buffer.from(out.outputFiles[0].contents).toString("base64")}`;
  return (await import(url)).doc;
}

/** JSON Schema → TypeScript, for the app routes' params, bodies and answers. */
function tsOf(schema, deref, indent = 0) {
  const s = deref(schema) ?? {};
  const pad = " ".repeat(indent);
  const variants = s.anyOf ?? s.oneOf;
  if (variants) return [...new Set(variants.map((v) => tsOf(v, deref, indent)))].join(" | ");
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  if (!types.length) return s.properties ? tsOf({ ...s, type: "object" }, deref, indent) : "unknown";
  return types
    .map((t) => {
      if (t === "string") return "string";
      if (t === "integer" || t === "number") return "number";
      if (t === "boolean") return "boolean";
      if (t === "null") return "null";
      if (t === "array") return `${s.items ? wrap(tsOf(s.items, deref, indent)) : "unknown"}[]`;
      const required = new Set(s.required ?? []);
      const props = Object.entries(s.properties ?? {});
      if (!props.length) return s.additionalProperties === false ? "Record<string, never>" : "{ [k: string]: unknown }";
      const lines = props.map(
        ([k, v]) =>
          `${pad}  ${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}${required.has(k) ? "" : "?"}: ${tsOf(v, deref, indent + 2)};`,
      );
      return `{\n${lines.join("\n")}\n${pad}}`;
    })
    .join(" | ");
}
const wrap = (t) => (/[ |]/.test(t) && !t.startsWith("{") ? `(${t})` : t);

/** `AppRoutes`: each `/v1/app/…` operation's params, query, body and answer. */
function appRoutesType(doc) {
  const deref = derefIn(doc);
  const entries = Object.entries(doc.paths ?? {}).filter(([p]) => p.startsWith("/v1/app/"));
  if (!entries.length) return "export type AppRoutes = {};\n";
  const routeLines = entries.sort().map(([p, item]) => {
    const ops = Object.entries(item)
      .filter(([m]) => ["get", "post", "put", "patch", "delete"].includes(m))
      .map(([m, op]) => {
        const params = (op.parameters ?? []).map(deref);
        const group = (where) => {
          const ps = params.filter((x) => x.in === where);
          if (!ps.length) return null;
          const schema = { type: "object", properties: {}, required: [] };
          for (const x of ps) {
            schema.properties[x.name] = x.schema ?? { type: "string" };
            if (x.required) schema.required.push(x.name);
          }
          return tsOf(schema, deref, 6);
        };
        const body = op.requestBody?.content?.["application/json"]?.schema;
        const ok = Object.entries(op.responses ?? {}).find(([code]) => /^2\d\d$/.test(code));
        const answer = ok?.[1]?.content?.["application/json"]?.schema;
        const parts = [
          ["params", group("path")],
          ["query", group("query")],
          ["body", body ? tsOf(body, deref, 6) : null],
          ["response", answer ? tsOf(answer, deref, 6) : "undefined"],
        ].filter(([, t]) => t !== null);
        const summary = op.summary ? `    /** ${op.summary.replaceAll("*/", "*\\/")} */\n` : "";
        return `${summary}    ${m}: {\n${parts.map(([k, t]) => `      ${k}: ${t};`).join("\n")}\n    };`;
      });
    return `  ${JSON.stringify(p.slice("/v1/app".length))}: {\n${ops.join("\n")}\n  };`;
  });
  return `export type AppRoutes = {\n${routeLines.join("\n")}\n};\n`;
}

const doc = openapi
  ? /^https?:/.test(openapi)
    ? await (await fetch(openapi)).json()
    : JSON.parse(readFileSync(path.resolve(cwd, openapi), "utf8"))
  : null;
const cols = doc ? fromOpenApi(doc) : await fromSource();
const appDoc = doc ?? (await appRoutesDoc());
if (!Object.keys(cols).length) throw new Error("no collections found");

const source = openapi
  ? "the OpenAPI document"
  : path.relative(root, declarations).startsWith("..")
    ? path.basename(declarations)
    : path.relative(root, declarations);
const refsOf = (fields) => Object.entries(fields).filter(([, f]) => f.ref);
const usesRefs = Object.values(cols).some((c) => refsOf(c.fields).length > 0);
const usesUsers = Object.values(cols).some((c) => refsOf(c.fields).some(([, f]) => f.ref === "users"));
const imports = ["CollectionTypes", ...(usesRefs ? ["RecordOf"] : []), ...(usesUsers ? ["UserProfile"] : [])];
let ts = `// Generated by \`npm run client:types\` from ${source}. Do not edit.
import type { ${imports.join(", ")} } from "@outpost/client";
`;
for (const [name, { team, fields }] of Object.entries(cols)) {
  const T = typeName(name);
  const entries = Object.entries(fields);
  const teamLine = team ? ["  teamId: string;"] : [];
  const fieldLines = [...teamLine, ...entries.map(([k, f]) => `  ${k}: ${tsType(f)};`)].join("\n");
  // Counts are the server's (read-only): not in what create and replace accept.
  const inputLines = [
    ...teamLine,
    ...entries.filter(([, f]) => f.kind !== "count").map(([k, f]) => `  ${k}${f.hasDefault ? "?" : ""}: ${tsType(f)};`),
  ];
  if (team) {
    ts += `\n/** A \`${name}\` record's fields and team (it also has id, ownerId, createdAt, updatedAt, version). */\n`;
    ts += `export type ${T} = {\n${fieldLines}\n};\n`;
    const what = "create accepts (fields with a default may be left out); replace: the same without teamId";
    ts += `/** What \`${name}\` ${what}. */\n`;
  } else {
    ts += `\n/** A \`${name}\` record's fields (the record also has id, ownerId, createdAt, updatedAt, version). */\n`;
    ts += `export type ${T} = {\n${fieldLines}\n};\n`;
    ts += `/** What \`${name}\` create and replace accept (fields with a default may be left out). */\n`;
  }
  ts += `export type ${T}Input = {\n${inputLines.join("\n")}\n};\n`;
  const refs = refsOf(fields);
  if (refs.length) {
    ts += `/** What \`${name}\`'s reference fields expand to (\`expand\`). */\n`;
    ts += `export type ${T}Refs = {\n${refs
      .map(([k, f]) => `  ${k}: ${f.ref === "users" ? "UserProfile" : `RecordOf<${typeName(f.ref)}>`};`)
      .join("\n")}\n};\n`;
  }
}
ts +=
  "\n/** Pass as the type argument of createClient: `createClient<Collections, AppRoutes>({ url, defaults })`. */\n";
ts += `export type Collections = {\n${Object.keys(cols)
  .map(
    (n) =>
      `  ${n}: CollectionTypes<${typeName(n)}, ${typeName(n)}Input${refsOf(cols[n].fields).length ? `, ${typeName(n)}Refs` : ""}>;`,
  )
  .join("\n")}\n};\n`;
ts += "\n/** The app's own routes under `/v1/app` (src/app/routes.ts): `client.app.post(path, { params, body })`. */\n";
ts += appRoutesType(appDoc);
const config = await configTypes(doc);
ts += "\n/** The remote config's keys and value types: `createClient<Collections, AppRoutes, AppConfig>(...)`. */\n";
ts += `export type AppConfig = {\n${Object.keys(config)
  .sort()
  .map((k) => `  ${JSON.stringify(k)}: ${config[k]};`)
  .join("\n")}\n};\n`;
const defaults = Object.fromEntries(
  Object.entries(cols).map(([n, { fields }]) => [
    n,
    Object.fromEntries(
      Object.entries(fields)
        .filter(([, f]) => f.default !== undefined)
        .map(([k, f]) => [k, f.default]),
    ),
  ]),
);
const literal = JSON.stringify(defaults, null, 2)
  .replace(/"([a-zA-Z_][a-zA-Z0-9_]*)":/g, "$1:")
  .replace(/([^,{[\s])(?=\n\s*[}\]])/g, "$1,")
  .replace(/,$/, "");
const defaultsDoc =
  "/** Field defaults, so records created offline show complete: `createClient({ url, defaults })`. */";
const defaultsType = `{ [K in keyof Collections]: Partial<Collections[K]["fields"]> }`;
/** Files to write: one .ts, or (for `--out x.js`) plain JS that Node imports as is, with its .d.ts. */
const files = {};
if (asJs) {
  files[out.replace(/\.([cm]?)js$/, ".d.$1ts")] =
    `${ts}\n${defaultsDoc}\nexport declare const defaults: ${defaultsType};\n`;
  files[out] =
    "// Generated by `npm run client:types`. Do not edit. Types: the .d.ts next to this file.\n\n" +
    `${defaultsDoc}\nexport const defaults = ${literal};\n`;
} else files[out] = `${ts}\n${defaultsDoc}\nexport const defaults: ${defaultsType} = ${literal};\n`;

if (args.includes("--check")) {
  for (const [file, text] of Object.entries(files)) {
    const rel = path.relative(cwd, file);
    let current = "";
    try {
      current = readFileSync(file, "utf8");
    } catch {
      // missing
    }
    if (current !== text) {
      console.error(`${rel} is out of date with the collection declarations: run npm run client:types`);
      process.exit(1);
    }
    console.log(`${rel} is up to date`);
  }
} else {
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
    console.log(`wrote ${path.relative(cwd, file)}: ${Object.keys(cols).join(", ")}`);
  }
}

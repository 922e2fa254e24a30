import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, inject, it } from "vitest";

const root = path.resolve(import.meta.dirname, "..", "..");

/** `npm run client:types` as an app developer runs it: from their app's folder, with --prefix to the Outpost repo. */
function clientTypes(cwd: string, ...args: string[]) {
  const r = spawnSync("npm", ["--prefix", root, "run", "--silent", "client:types", "--", ...args], {
    cwd,
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`client:types failed: ${r.stdout}\n${r.stderr}`);
  return r;
}

describe("npm run client:types", () => {
  // A .js output imports in Node as it is.
  it("writes into the caller's folder by default and resolves --out from there", () => {
    const app = mkdtempSync(path.join(os.tmpdir(), "outpost-app-"));
    try {
      clientTypes(app);
      expect(existsSync(path.join(app, "outpost-types.ts"))).toBe(true);

      clientTypes(app, "--out", "src/generated/outpost-types.js");
      const js = path.join(app, "src", "generated", "outpost-types.js");
      expect(existsSync(js)).toBe(true);
      expect(readFileSync(path.join(app, "src", "generated", "outpost-types.d.ts"), "utf8")).toContain(
        "export type Collections",
      );
      const run = spawnSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `const m = await import(${JSON.stringify(js)}); console.log(JSON.stringify(m.defaults.notes));`,
        ],
        { encoding: "utf8" },
      );
      expect(run.stderr).toBe("");
      expect(JSON.parse(run.stdout)).toMatchObject({ pinned: false });
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });
});

/** A declarations module as `collection()` leaves it: each export carries its metadata under the shared symbol. */
const DECLARATIONS = `
const MARK = Symbol.for("outpost.collection");
const f = (kind, o = {}) => ({ kind, nullable: false, default: undefined, ...o });
export const lists = { [MARK]: { name: "lists", scope: "team", fields: { title: f("string") } } };
export const items = {
  [MARK]: { name: "items", scope: "team", fields: { text: f("string"), done: f("boolean", { default: false }) } },
};
export const notes = { [MARK]: { name: "notes", scope: "owner", fields: { title: f("string") } } };
`;

/** The same collections as a server's OpenAPI document describes them (create bodies). */
const OPENAPI = {
  paths: Object.fromEntries(
    Object.entries({
      lists: { properties: { id: { type: "string" }, teamId: { type: "string" }, title: { type: "string" } } },
      items: {
        properties: {
          text: { type: "string" },
          done: { type: "boolean", default: false },
          teamId: { type: "string" },
        },
        required: ["teamId", "text"],
      },
      notes: { properties: { title: { type: "string" } }, required: ["title"] },
    }).map(([name, s]) => [
      `/v1/collections/${name}/records`,
      {
        post: {
          requestBody: {
            content: {
              "application/json": { schema: { type: "object", required: ["teamId", "title"], ...s } },
            },
          },
        },
      },
    ]),
  ),
};
OPENAPI.paths["/v1/collections/notes/records"]!.post.requestBody.content["application/json"].schema.required = [
  "title",
];

/** The body of one generated type alias. */
const typeBody = (ts: string, name: string) => new RegExp(`export type ${name} = \\{\\n([^}]*)\\};`).exec(ts)?.[1];

describe("npm run client:types: team-scoped collections", () => {
  it.each([
    ["declarations", (dir: string) => ["--collections", path.join(dir, "collections.mjs")]],
    ["an OpenAPI document", (dir: string) => ["--openapi", path.join(dir, "openapi.json")]],
  ])("from %s: teamId required on create and present on records, only for team scope", (_, args) => {
    const app = mkdtempSync(path.join(os.tmpdir(), "outpost-team-"));
    try {
      writeFileSync(path.join(app, "collections.mjs"), DECLARATIONS);
      writeFileSync(path.join(app, "openapi.json"), JSON.stringify(OPENAPI));
      clientTypes(app, ...args(app), "--out", "types.ts");
      const ts = readFileSync(path.join(app, "types.ts"), "utf8");
      expect(typeBody(ts, "List")).toBe("  teamId: string;\n  title: string;\n");
      expect(typeBody(ts, "ListInput")).toBe("  teamId: string;\n  title: string;\n");
      expect(typeBody(ts, "Item")).toBe("  teamId: string;\n  text: string;\n  done: boolean;\n");
      expect(typeBody(ts, "ItemInput")).toBe("  teamId: string;\n  text: string;\n  done?: boolean;\n");
      expect(typeBody(ts, "Note")).toBe("  title: string;\n");
      expect(typeBody(ts, "NoteInput")).toBe("  title: string;\n");
      expect(ts).toContain(
        "/** What `lists` create accepts (fields with a default may be left out); replace: the same without teamId. */",
      );
      // teamId has no default: a record created offline shows the team it was given.
      expect(ts).toContain("  items: {\n    done: false,\n  },\n");
      expect(ts).toContain("  lists: {},\n");
      clientTypes(app, ...args(app), "--out", "types.ts", "--check");
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });
});

describe("npm run client:types: the server's own OpenAPI document", () => {
  it("types the example app's team-scoped collections as its declarations do", async () => {
    const app = mkdtempSync(path.join(os.tmpdir(), "outpost-openapi-"));
    try {
      const doc = await (await fetch(`${inject("outpostUrl")}/v1/openapi.json`)).text();
      writeFileSync(path.join(app, "openapi.json"), doc);
      clientTypes(app, "--out", "source.ts");
      clientTypes(app, "--openapi", "openapi.json", "--out", "openapi.ts");
      const fromSource = readFileSync(path.join(app, "source.ts"), "utf8");
      const fromDoc = readFileSync(path.join(app, "openapi.ts"), "utf8");
      for (const name of ["List", "ListInput", "Item", "ItemInput"]) {
        expect(typeBody(fromDoc, name)).toContain("  teamId: string;\n");
        expect(typeBody(fromDoc, name)).toBe(typeBody(fromSource, name));
      }
      // The app's own routes: the same AppRoutes from the live document as from src/app/routes.ts.
      const appRoutes = (ts: string) => /export type AppRoutes = \{\n[\s\S]*?\n\};\n/.exec(ts)?.[0];
      expect(appRoutes(fromDoc)).toContain('  "/lists/{id}/clear-done": {\n');
      expect(appRoutes(fromDoc)).toContain("      response: {\n        deleted: number;\n      };\n");
      expect(appRoutes(fromDoc)).toBe(appRoutes(fromSource));
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });
});

/**
 * Shared pieces of the fuzz suite: run settings (FUZZ_SEED, FUZZ_RUNS), junk generators, and the
 * "nothing written" snapshot of D1 and R2.
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";

/**
 * Host environment variables reach the Workers runtime only through Vite, which forwards the
 * `VITE_`-prefixed ones; the pool puts them on `process.env` at run time. (Not `import.meta.env`:
 * that is inlined when the file is transformed, and Vitest caches transforms across runs.) So the
 * knobs are VITE_FUZZ_SEED and VITE_FUZZ_RUNS; plain FUZZ_SEED / FUZZ_RUNS also work if the
 * config's `envPrefix` lets them through.
 */
const hostEnv: Record<string, string | undefined> =
  (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};
const knob = (name: string) => hostEnv[`VITE_${name}`] ?? hostEnv[name];

/**
 * Fixed seed for reproduction: `VITE_FUZZ_SEED=1234 npx vitest run test/fuzz`. fast-check prints
 * the seed of a failing run.
 */
export const FUZZ_SEED = knob("FUZZ_SEED") ? Number(knob("FUZZ_SEED")) : undefined;
/** Runs per property (bounded for CI): `VITE_FUZZ_RUNS=200` for a longer hunt. */
export const FUZZ_RUNS = Number(knob("FUZZ_RUNS") ?? 30);

/** One line of the end-of-run report: the route and how often it answered each status. */
export const statusLine = (route: string, counts: Map<number, number>, extra = "") =>
  `${route.padEnd(48)} ${[...counts]
    .sort(([x], [y]) => x - y)
    .map(([s, n]) => `${s}×${n}`)
    .join(" ")}${extra}`;

export const fcParams = (numRuns = FUZZ_RUNS): fc.Parameters<unknown> => ({
  numRuns,
  ...(FUZZ_SEED !== undefined ? { seed: FUZZ_SEED } : {}),
  endOnFailure: true,
});

// --- junk --------------------------------------------------------------------------------------

const printable = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i));
/** Header-safe strings (printable ASCII): anything else is refused by `Headers` itself, before the server. */
export const headerJunk = fc.oneof(
  fc.string({ unit: fc.constantFrom(...printable), maxLength: 80 }),
  fc.constantFrom(
    "",
    " ",
    "*",
    'W/"1"',
    '"1"',
    '"-1"',
    '"99999999999999999999"',
    "null",
    "0",
    "-1",
    "1e309",
    "a".repeat(4000),
    '"',
    ",,,",
    "%00",
    "bytes=0-",
  ),
);

/** Tricky strings for any text slot. */
export const nastyStrings = [
  "",
  " ",
  "\u0000",
  "../",
  "../../etc/passwd",
  "..%2F..%2Fv1%2Fme",
  "%",
  "%zz",
  "%E0%A4%A",
  "' OR 1=1 --",
  '"; DROP TABLE users; --',
  "<script>alert(1)</script>",
  "💥🔥",
  "\uD800",
  "é".repeat(300),
  "a".repeat(5000),
  "null",
  "undefined",
  "true",
  "0",
  "-1",
  "1e308",
  "NaN",
  "__proto__",
  "constructor",
  '{"$gt":""}',
];

export const stringJunk = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.constantFrom(...nastyStrings),
  fc.string({ unit: "grapheme", maxLength: 30 }),
);

/** A value for a JSON field: wrong types, edge numbers, nasty strings, nesting. */
export const valueJunk: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  stringJunk,
  fc.constantFrom(
    -1,
    0,
    1,
    1.5,
    -0,
    2 ** 53 + 1,
    1e308,
    -1e308,
    true,
    false,
    null,
    [],
    {},
    [""],
    [null],
    { $gt: 0 },
    { $where: "1" },
  ),
  fc.array(stringJunk, { maxLength: 30 }),
);

/** Placeholders the HTTP fuzzer swaps for real ids at request time (see http.test.ts). */
export const REAL_ID_PLACEHOLDERS = ["@@userB@@", "@@userA@@", "@@file@@", "@@room@@"] as const;

/** Plausible values: often valid for some field, so junk in the others reaches deeper code. */
export const plausible: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ minLength: 1, maxLength: 40 }),
  fc.emailAddress(),
  fc.string({ minLength: 8, maxLength: 30 }),
  fc.boolean(),
  fc.nat({ max: 1000 }),
  fc.constantFrom(...REAL_ID_PLACEHOLDERS),
  fc.constantFrom(
    "ios",
    "android",
    "web",
    "fcm",
    "apns",
    "expo",
    "apple",
    "google",
    "group",
    "direct",
    "public",
    "private",
  ),
  fc.array(fc.constantFrom(...REAL_ID_PLACEHOLDERS, "tag"), { maxLength: 3 }),
);

/** A JSON body built from the schema's own field names (so it gets past "unknown field"), with junk values. */
export const objectJunk = (keys: string[]) =>
  fc
    .tuple(
      keys.length
        ? fc.record(Object.fromEntries(keys.map((k) => [k, fc.oneof(valueJunk, plausible)])), { requiredKeys: [] })
        : fc.constant({}),
      fc.option(
        fc.dictionary(
          fc.oneof(
            fc.string({ maxLength: 12 }),
            fc.constantFrom("__proto__", "id", "ownerId", "version", "constructor"),
          ),
          valueJunk,
          { maxKeys: 2 },
        ),
        { nil: undefined },
      ),
    )
    .map(([known, extra]) => ({ ...known, ...(extra ?? {}) }));

export const contentTypes = fc.constantFrom(
  "application/json",
  "application/json; charset=utf-8",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data",
  "multipart/form-data; boundary=----fuzz",
  "application/octet-stream",
  "application/offset+octet-stream",
  "image/png",
  "image/jpeg",
  "video/mp4",
  "application/problem+json",
  "*/*",
  "garbage",
  "",
);

export interface BodyCase {
  contentType?: string;
  body?: string | Uint8Array;
  label: string;
}

/** Any body: none, JSON junk, schema-shaped junk, malformed JSON, text or bytes under a random content type. */
export const bodyJunk = (keys: string[]): fc.Arbitrary<BodyCase> =>
  fc.oneof(
    fc.constant<BodyCase>({ label: "none" }),
    objectJunk(keys).map((o) => ({
      contentType: "application/json",
      body: JSON.stringify(o),
      label: "schema-shaped json",
    })),
    fc
      .jsonValue({ maxDepth: 4 })
      .map((j) => ({ contentType: "application/json", body: JSON.stringify(j), label: "json" })),
    fc
      .constantFrom(
        "{",
        "[1,",
        '{"a":1}garbage',
        "\u0000",
        '{"__proto__":{"x":1}}',
        '"x"',
        "1".repeat(400),
        "{".repeat(5000),
        "[]",
        "nul",
      )
      .map((b) => ({ contentType: "application/json", body: b, label: "malformed json" })),
    fc.tuple(contentTypes, stringJunk).map(([ct, b]) => ({ contentType: ct, body: b, label: "text" })),
    fc
      .tuple(contentTypes, fc.uint8Array({ maxLength: 2048 }))
      .map(([ct, b]) => ({ contentType: ct, body: b, label: "bytes" })),
    fc.tuple(fc.string({ maxLength: 30 }), fc.uint8Array({ maxLength: 256 })).map(([name, bytes]) => ({
      contentType: "multipart/form-data; boundary=fuzzb",
      body:
        `--fuzzb\r\nContent-Disposition: form-data; name="${name.replace(/["\r\n]/g, "")}"; filename="f.bin"\r\n` +
        `Content-Type: image/png\r\n\r\n${String.fromCharCode(...bytes)}\r\n--fuzzb--\r\n`,
      label: "multipart",
    })),
  );

// --- nothing written ---------------------------------------------------------------------------

let tableNames: string[] | null = null;

/**
 * What the events pipeline's background jobs write while the fuzz runs (earlier requests' after
 * hooks: the drain, the runs, the welcome mail): never a request's own write, so left out of the
 * comparison. The events a request writes (in its own transaction) are compared.
 */
const background: Record<string, string | null> = {
  events: "SELECT seq, event, record_id, record, previous, at FROM events ORDER BY seq",
  event_runs: null,
  dev_outbox: "SELECT * FROM dev_outbox WHERE subject NOT LIKE 'Welcome to %' ORDER BY rowid",
  // A wrong sign-in code is refused and counts against the address's code (its one intended write).
  otp_codes: null,
  // Likewise a wrong second-factor code counts against its sign-in's mfaToken.
  mfa_challenges: null,
};

/** Every row of every D1 table, plus the R2 object keys: compared before/after a rejected request. */
export async function snapshot(): Promise<Record<string, string>> {
  tableNames ??= (
    await env.DB.prepare(
      // Full-text tables (and FTS5's shadow tables) mirror the collections' tables, compared themselves.
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' " +
        "AND name NOT LIKE '_cf_%' AND name != 'd1_migrations' AND name NOT LIKE '%\\_fts%' ESCAPE '\\' ORDER BY name",
    ).all<{ name: string }>()
  ).results
    .map((r) => r.name)
    .filter((t) => background[t] !== null);
  const out: Record<string, string> = {};
  const rows = await env.DB.batch(
    tableNames.map((t) => env.DB.prepare(background[t] ?? `SELECT * FROM "${t}" ORDER BY rowid`)),
  );
  for (const [i, t] of tableNames.entries()) out[`d1:${t}`] = JSON.stringify(rows[i]!.results);
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.MEDIA.list({ cursor, limit: 1000 });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  out["r2:objects"] = JSON.stringify(keys);
  return out;
}

/** Names of the parts of two snapshots that differ. */
export function changed(a: Record<string, string>, b: Record<string, string>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => a[k] !== b[k]);
}

/**
 * JSON Schema → fast-check: valid values for the subset /v1/openapi.json uses (object, string with
 * lengths/format/pattern/enum/const, integer/number bounds, boolean, null, array, anyOf/oneOf, $ref),
 * and mutations of a valid value that break the schema in one place.
 */
import fc from "fast-check";

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  $ref?: string;
}

/**
 * Known-good values by property name (a real user id for `userId`, a real password for
 * `password`...): mixed in beside the generated values, so a valid body also names real things.
 */
export type Hints = Record<string, fc.Arbitrary<unknown>>;

export interface SchemaContext {
  /** The document, for `#/components/...` references. */
  root?: unknown;
  hints?: Hints;
  /** Fields whose hint replaces the generated values instead of joining them. */
  hintOnly?: string[];
}

const printable = fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 1 }).filter((s) => s.trim() !== "");
// Non-ASCII from the Basic Multilingual Plane only: the validators count UTF-16 code units, so an
// astral character (an emoji) counts twice against a maxLength the document states in characters.
const textUnit = fc.oneof(
  { weight: 8, arbitrary: printable },
  { weight: 1, arbitrary: fc.constantFrom("é", "漢", "ß") },
);

function resolve(s: JsonSchema, ctx: SchemaContext): JsonSchema {
  if (!s.$ref) return s;
  const target = s.$ref
    .replace(/^#\//, "")
    .split("/")
    .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], ctx.root);
  if (!target) throw new Error(`unresolved $ref ${s.$ref}`);
  return resolve(target as JsonSchema, ctx);
}

/** The characters of a `^[class]*$` or `^[class]+$` pattern (ranges and single characters), else null. */
function classChars(pattern: string): string[] | null {
  const m = /^\^\[([^\]\\^]+)\][*+]\$$/.exec(pattern);
  if (!m) return null;
  const out: string[] = [];
  const body = m[1]!;
  for (let i = 0; i < body.length; i++) {
    if (body[i + 1] === "-" && i + 2 < body.length) {
      for (let c = body.charCodeAt(i); c <= body.charCodeAt(i + 2); c++) out.push(String.fromCharCode(c));
      i += 2;
    } else out.push(body[i]!);
  }
  return out;
}

/** Strings within the bounds: mostly short, sometimes exactly the longest allowed. */
function stringArb(s: JsonSchema): fc.Arbitrary<string> {
  const min = s.minLength ?? 0;
  const max = s.maxLength ?? Math.max(min, 64);
  if (s.format === "email") {
    const part = fc.string({
      unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789"),
      minLength: 1,
      maxLength: 12,
    });
    return fc
      .tuple(part, part, fc.nat())
      .map(([local, host, n]) => `${local}.${n.toString(36)}.${Date.now().toString(36)}@${host}.example`)
      .filter((e) => e.length >= min && e.length <= max);
  }
  if (s.pattern) {
    // A pattern that is one character class repeated (`^[A-Za-z0-9_-]*$`): strings of that class within the
    // bounds. Filtering `stringMatching` by a minimum length would almost never let one through.
    const chars = classChars(s.pattern);
    if (chars) {
      const least = s.pattern.endsWith("+$") ? Math.max(min, 1) : min;
      return fc.string({ unit: fc.constantFrom(...chars), minLength: least, maxLength: Math.min(max, least + 24) });
    }
    return fc
      .stringMatching(new RegExp(s.pattern), { size: "small" })
      .filter((v) => v.length >= min && v.length <= max);
  }
  const short = fc.string({ unit: textUnit, minLength: min, maxLength: Math.min(max, min + 24) });
  const full = fc.string({ unit: textUnit, minLength: max, maxLength: max });
  return max - min > 24 ? fc.oneof({ weight: 9, arbitrary: short }, { weight: 1, arbitrary: full }) : short;
}

function numberArb(s: JsonSchema, integer: boolean): fc.Arbitrary<number> {
  const min = s.minimum ?? (integer ? -1000 : -1e6);
  const max = Math.min(s.maximum ?? (integer ? 1000 : 1e6), Number.MAX_SAFE_INTEGER);
  const inner = integer ? fc.integer({ min, max }) : fc.double({ min, max, noNaN: true, noDefaultInfinity: true });
  return fc.oneof({ weight: 4, arbitrary: inner }, { weight: 1, arbitrary: fc.constantFrom(min, max) });
}

function typeOf(s: JsonSchema): string | undefined {
  if (Array.isArray(s.type)) return s.type[0];
  if (s.type) return s.type;
  if (s.properties) return "object";
  if (s.enum) return typeof s.enum[0];
  return undefined;
}

/** Values `schema` accepts. */
export function validArb(schema: JsonSchema, ctx: SchemaContext = {}): fc.Arbitrary<unknown> {
  const s = resolve(schema, ctx);
  if (s.const !== undefined) return fc.constant(s.const);
  if (s.enum) return fc.constantFrom(...s.enum);
  const branches = s.anyOf ?? s.oneOf;
  if (branches) return fc.oneof(...branches.map((b) => validArb(b, ctx)));
  if (Array.isArray(s.type)) return fc.oneof(...s.type.map((t) => validArb({ ...s, type: t }, ctx)));
  switch (typeOf(s)) {
    case "string":
      return stringArb(s);
    case "integer":
      return numberArb(s, true);
    case "number":
      return numberArb(s, false);
    case "boolean":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "array": {
      const minLength = s.minItems ?? 0;
      const maxLength = Math.min(s.maxItems ?? 5, minLength + 5);
      return fc.array(validArb(s.items ?? {}, ctx), { minLength, maxLength });
    }
    case "object":
      return objectArb(s, ctx);
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

function objectArb(s: JsonSchema, ctx: SchemaContext): fc.Arbitrary<Record<string, unknown>> {
  const props = s.properties ?? {};
  const hints = ctx.hints ?? {};
  const fields = Object.fromEntries(
    Object.entries(props).map(([k, p]) => {
      const own = validArb(p, ctx);
      const hint = hints[k];
      if (!hint) return [k, own];
      return [
        k,
        ctx.hintOnly?.includes(k) ? hint : fc.oneof({ weight: 3, arbitrary: hint }, { weight: 1, arbitrary: own }),
      ];
    }),
  );
  const known = fc.record(fields, { requiredKeys: (s.required ?? []).filter((k) => k in props) });
  const extra = s.additionalProperties;
  if (!extra || extra === true || Object.keys(props).length) return known;
  // A free-form map (`additionalProperties: {...}`): keys from propertyNames, values from the schema.
  const keys = s.propertyNames?.pattern
    ? fc.stringMatching(new RegExp(s.propertyNames.pattern), { size: "xsmall" })
    : fc.string({ unit: printable, minLength: 1, maxLength: 12 });
  return fc.dictionary(keys, validArb(extra, ctx), { maxKeys: 3, noNullPrototype: true });
}

// --- mutations: one documented rule broken --------------------------------------------------------

export interface Mutated {
  value: unknown;
  /** What was broken, for the failure message. */
  how: string;
}

/** A wrong-typed value for a slot of schema `s` (never valid for it). */
function wrongType(s: JsonSchema, ctx: SchemaContext): fc.Arbitrary<unknown> {
  const r = resolve(s, ctx);
  const types = new Set(
    (r.anyOf ?? r.oneOf ?? [r]).map((b) => typeOf(resolve(b, ctx))).filter((t): t is string => t !== undefined),
  );
  const pool: unknown[] = [];
  if (!types.has("string")) pool.push("not-the-right-type");
  if (!types.has("integer") && !types.has("number")) pool.push(42, -1.5);
  if (!types.has("boolean")) pool.push(true);
  if (!types.has("array")) pool.push(["x"]);
  if (!types.has("object")) pool.push({ nested: 1 });
  if (!types.has("null")) pool.push(null);
  return fc.constantFrom(...pool);
}

/** A value just outside one bound of `s`, if `s` has a bound that a single value can break. */
function outOfRange(s: JsonSchema, ctx: SchemaContext): fc.Arbitrary<unknown> | null {
  const r = resolve(s, ctx);
  if (r.anyOf || r.oneOf) return null;
  const out: fc.Arbitrary<unknown>[] = [];
  if (r.enum && typeof r.enum[0] === "string") out.push(fc.constant(`${String(r.enum[0])}-not-listed`));
  if (r.const !== undefined && typeof r.const === "string") out.push(fc.constant(`${r.const}-not-it`));
  const t = typeOf(r);
  if (t === "string" && r.maxLength !== undefined) out.push(fc.constant("x".repeat(r.maxLength + 1)));
  if (t === "string" && (r.minLength ?? 0) > 0 && !r.pattern) out.push(fc.constant("x".repeat(r.minLength! - 1)));
  if (t === "string" && r.pattern && !new RegExp(r.pattern).test("")) out.push(fc.constant(""));
  if ((t === "integer" || t === "number") && r.maximum !== undefined && r.maximum < Number.MAX_SAFE_INTEGER)
    out.push(fc.constant(r.maximum + 1));
  if ((t === "integer" || t === "number") && r.minimum !== undefined) out.push(fc.constant(r.minimum - 1));
  if (t === "integer") out.push(fc.constant(1.5));
  if (t === "array" && r.maxItems !== undefined && r.items)
    out.push(fc.array(validArb(r.items, ctx), { minLength: r.maxItems + 1, maxLength: r.maxItems + 1 }));
  if (t === "array" && (r.minItems ?? 0) > 0) out.push(fc.constant([]));
  return out.length ? fc.oneof(...out) : null;
}

/**
 * A valid object for `schema` with one rule broken: a required field dropped, a field of the wrong
 * type, a value out of range, or a field the document does not list. Null when the schema is not an
 * object with something to break.
 */
export function mutatedArb(schema: JsonSchema, ctx: SchemaContext = {}): fc.Arbitrary<Mutated> | null {
  const s = resolve(schema, ctx);
  if (typeOf(s) !== "object") return null;
  const props = s.properties ?? {};
  const kinds: fc.Arbitrary<Mutated>[] = [];
  const base = validArb(s, ctx) as fc.Arbitrary<Record<string, unknown>>;
  for (const key of s.required ?? []) {
    kinds.push(
      base.map((v) => {
        const { [key]: _dropped, ...rest } = v;
        return { value: rest, how: `required "${key}" dropped` };
      }),
    );
  }
  for (const [key, p] of Object.entries(props)) {
    kinds.push(
      fc
        .tuple(base, wrongType(p, ctx))
        .map(([v, bad]) => ({ value: { ...v, [key]: bad }, how: `"${key}" of the wrong type` })),
    );
    const range = outOfRange(p, ctx);
    if (range)
      kinds.push(
        fc.tuple(base, range).map(([v, bad]) => ({ value: { ...v, [key]: bad }, how: `"${key}" out of range` })),
      );
  }
  if (s.additionalProperties === false)
    kinds.push(base.map((v) => ({ value: { ...v, notInTheSchema: 1 }, how: "a field the schema does not list" })));
  kinds.push(fc.constantFrom<unknown>([], "text", 7, null).map((value) => ({ value, how: "not an object" })));
  return fc.oneof(...kinds);
}

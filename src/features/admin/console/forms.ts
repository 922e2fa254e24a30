/**
 * A record's edit form, built from its collection's declaration: one control per field, and the
 * way back from form text to the JSON the API would take. The values are then validated with the
 * collection's own PATCH schema, so the console accepts exactly what the API accepts.
 */
import type * as v from "valibot";
import type { Collection, Field } from "../../collections";

export type FieldInput =
  | { name: string; hint: string; control: "text" | "number"; value: string }
  | { name: string; hint: string; control: "textarea"; value: string; rows: number }
  | { name: string; hint: string; control: "select"; value: string; options: string[] };

/** The largest `maxLength` in a field's schema (through `nullable`), if any. */
function maxLengthOf(f: Field): number | undefined {
  let s = f.schema as v.GenericSchema & { wrapped?: v.GenericSchema; pipe?: { type: string; requirement?: unknown }[] };
  if (s.wrapped) s = s.wrapped as typeof s;
  const max = s.pipe?.find((a) => a.type === "max_length")?.requirement;
  return typeof max === "number" ? max : undefined;
}

/** Text that a field's value shows as in its control. */
function asText(f: Field, value: unknown): string {
  if (value === null || value === undefined) return f.kind === "boolean" && f.nullable ? "null" : "";
  if (f.kind === "stringArray") return Array.isArray(value) ? value.join("\n") : "";
  return String(value);
}

/** The controls of a record's form; `submitted` (a failed save) wins over the stored values. */
export function fieldInputs(
  col: Collection,
  record: Record<string, unknown>,
  submitted?: Record<string, string>,
): FieldInput[] {
  return Object.entries(col.fields).map(([name, f]): FieldInput => {
    const value = submitted?.[name] ?? asText(f, record[name]);
    const nullable = f.nullable ? ", empty = null" : "";
    switch (f.kind) {
      case "boolean":
        return {
          name,
          hint: `(boolean${f.nullable ? ", nullable" : ""})`,
          control: "select",
          value,
          options: f.nullable ? ["true", "false", "null"] : ["true", "false"],
        };
      case "integer":
      case "number":
        return { name, hint: `(${f.kind}${nullable})`, control: "number", value };
      case "stringArray":
        return { name, hint: "(list: one item per line)", control: "textarea", value, rows: 4 };
      default: {
        const max = maxLengthOf(f);
        const hint = `(text${max ? `, up to ${max}` : ""}${nullable})`;
        return max !== undefined && max <= 200
          ? { name, hint, control: "text", value }
          : { name, hint, control: "textarea", value, rows: 6 };
      }
    }
  });
}

/**
 * Form text → the values a PATCH would send. Text that is not a valid value of its kind is passed
 * on as text, so the collection's schema reports it like the API would.
 */
export function formToValues(col: Collection, form: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(col.fields)) {
    const raw = form[name];
    if (raw === undefined) continue;
    switch (f.kind) {
      case "boolean":
        out[name] = raw === "true" ? true : raw === "false" ? false : raw === "null" && f.nullable ? null : raw;
        break;
      case "integer":
      case "number": {
        const t = raw.trim();
        out[name] = t === "" && f.nullable ? null : t !== "" && Number.isFinite(Number(t)) ? Number(t) : raw;
        break;
      }
      case "stringArray":
        out[name] = raw
          .split(/\r?\n/)
          .map((s) => s.trim())
          .filter(Boolean);
        break;
      default:
        out[name] = raw === "" && f.nullable ? null : raw.replace(/\r\n/g, "\n");
    }
  }
  return out;
}

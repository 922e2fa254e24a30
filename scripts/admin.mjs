// `npm run admin -- promote <email> [--local | --remote] [--persist-to <dir>]`: makes an existing
// account whose email is verified an admin (the first admin of a deployment comes from here; later
// ones from the console). `demote <email>` takes the role back, except from the last active admin.
// Runs `wrangler d1 execute DB` on the local database (the default, the one `npm run dev` uses) or,
// with --remote, on the deployed D1.
//
// wrangler's --command takes no bound parameters, so the email goes into the statement as a
// literal: it must pass a strict address check first (no quotes, spaces, backslashes, semicolons
// or control characters), and is quoted SQL-style on top of that.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(import.meta.dirname, "..");
const USAGE = "usage: npm run admin -- <promote|demote> <email> [--local | --remote] [--persist-to <dir>]";

/** A plain address: local@domain.tld, printable ASCII without quotes, spaces, backslashes or semicolons. */
const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const EMAIL_RE = new RegExp(`^[A-Za-z0-9.!#$%&*+/=?^_\`{|}~-]+@${LABEL}(?:\\.${LABEL})+$`);

/** The email as stored (lowercased), or an error message. */
export function checkEmail(raw) {
  const email = String(raw ?? "")
    .trim()
    .toLowerCase();
  if (email.length === 0 || email.length > 254 || !EMAIL_RE.test(email))
    return { error: `not a valid email address: ${JSON.stringify(String(raw ?? ""))}` };
  return { email };
}

const literal = (s) => `'${s.replaceAll("'", "''")}'`;

/**
 * The statement that sets the role of the account with this (checked) email; an admin's email must
 * be verified (else no row changes, and `explainStatement` says why).
 */
export function roleStatement(email, role, now = new Date().toISOString()) {
  if (role !== "admin" && role !== "user") throw new Error(`unknown role ${role}`);
  const verified = role === "admin" ? " AND email_verified = 1" : "";
  return (
    `UPDATE users SET role = ${literal(role)}, updated_at = ${literal(now)} ` +
    `WHERE email = ${literal(email)}${verified} RETURNING id, email, role, disabled;`
  );
}

/** Why a role statement changed nothing: is there such an account, and is its email verified? */
export const explainStatement = (email) =>
  `SELECT id, email_verified AS verified FROM users WHERE email = ${literal(email)};`;

/** The database refused to leave no active admin (migrations/0008_last_admin_guard.sql). */
const LAST_ADMIN = "last_active_admin";

/** Parses argv (after the script name); returns the plan or an error. */
export function parseArgs(argv) {
  const [command, rawEmail, ...rest] = argv;
  if (command !== "promote" && command !== "demote") return { error: USAGE };
  const checked = checkEmail(rawEmail);
  if (checked.error) return { error: `${checked.error}\n${USAGE}` };
  let target = "--local";
  let persistTo = null;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === "--local" || a === "--remote") target = a;
    else if (a === "--persist-to" && rest[i + 1]) persistTo = rest[++i];
    else return { error: `unknown option ${a}\n${USAGE}` };
  }
  if (persistTo && target === "--remote") return { error: "--persist-to is for --local only" };
  return { role: command === "promote" ? "admin" : "user", email: checked.email, target, persistTo };
}

/** Runs one statement with `wrangler d1 execute`; returns the process result. */
function execute(plan, statement) {
  const args = ["d1", "execute", "DB", plan.target, "--json", "--yes", "--command", statement];
  if (plan.persistTo) args.push("--persist-to", plan.persistTo);
  const wrangler = path.join(root, "node_modules", "wrangler", "bin", "wrangler.js");
  return spawnSync(process.execPath, [wrangler, ...args], { cwd: root, encoding: "utf8" });
}

/** The rows of wrangler's JSON answer, or exits. */
function rowsOf(r) {
  try {
    const out = JSON.parse(r.stdout.slice(r.stdout.indexOf("[")));
    return out.flatMap((x) => x.results ?? []);
  } catch {
    process.stderr.write(r.stdout);
    console.error("could not read wrangler's answer");
    process.exit(1);
  }
}

function main() {
  const plan = parseArgs(process.argv.slice(2));
  if (plan.error) {
    console.error(plan.error);
    process.exit(2);
  }
  const r = execute(plan, roleStatement(plan.email, plan.role));
  if (r.status !== 0 && `${r.stderr}${r.stdout}`.includes(LAST_ADMIN)) {
    console.error(`${plan.email} is the last active admin: promote another admin first.`);
    process.exit(1);
  }
  if (r.status !== 0) {
    process.stderr.write(r.stderr || r.stdout);
    console.error(
      `wrangler d1 execute failed (exit ${r.status}). ` +
        "Locally, run `npm run dev` once first so the database and its tables exist.",
    );
    process.exit(1);
  }
  const rows = rowsOf(r);
  if (rows.length === 0 && plan.role === "admin") {
    const found = rowsOf(execute(plan, explainStatement(plan.email)));
    if (found.length > 0 && !found[0].verified) {
      console.error(
        `${plan.email} has not verified its email yet: an admin must have. ` +
          "Verify it (POST /v1/auth/verify-email), then run this again.",
      );
      process.exit(1);
    }
  }
  if (rows.length === 0) {
    console.error(
      `No account has the email ${plan.email} (${plan.target.slice(2)} database). Sign up first, then run this again.`,
    );
    process.exit(1);
  }
  const u = rows[0];
  console.log(
    `${u.email} (${u.id}) is now ${u.role === "admin" ? "an admin" : "a regular user"}` +
      `${u.disabled ? " (the account is disabled)" : ""}.`,
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();

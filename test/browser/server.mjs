// The Worker for the browser tests: the deploy bundle (`wrangler deploy --dry-run`) on workerd
// through miniflare, with wrangler.toml's bindings and its static-assets directory (so /admin's
// stylesheet and script are served like in production), storage in a fresh directory laid out
// like wrangler's (`--persist-to`), so `npm run admin -- promote --persist-to` reaches the same D1.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";
import { ensureDocsAssets } from "../../scripts/docs-assets.mjs";

export const root = path.resolve(import.meta.dirname, "..", "..");
/** wrangler's CLI, run with this Node (the pinned one under npm scripts), whatever `node` is on PATH. */
const WRANGLER = path.join(root, "node_modules", "wrangler", "bin", "wrangler.js");

/** Test-only secrets (never deployed). */
export const SECRETS = {
  JWT_SECRET: "browser-test-jwt-secret-0123456789abcdef0123456789",
  SERVICE_KEY: "browser-test-service-key-0123456789",
};

function build(outdir) {
  const r = spawnSync(process.execPath, [WRANGLER, "deploy", "--dry-run", "--outdir", outdir], {
    cwd: root,
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`wrangler deploy --dry-run failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return path.join(outdir, "index.js");
}

/**
 * Builds and starts Outpost; returns its URL (on `localhost`), the persistence directory, the
 * Miniflare instance and `stop()`. `again`: start on the storage a previous `stop({ keep: true })`
 * left (a restart: no migrations, the same D1 and R2). `consumer`: also run wrangler.toml's Queue
 * consumer (the console tests leave the queue unconsumed).
 */
export async function startWorker({ again, consumer = false } = {}) {
  ensureDocsAssets();
  const work = again?.work ?? mkdtempSync(path.join(os.tmpdir(), "outpost-browser-"));
  const scriptPath = again?.scriptPath ?? build(path.join(work, "dist"));
  const { unstable_readConfig, unstable_splitSqlQuery } = await import("wrangler");
  const config = unstable_readConfig({ config: path.join(root, "wrangler.toml") });
  const persistTo = path.join(work, "state");
  const v3 = path.join(persistTo, "v3");
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: "127.0.0.1",
      port: 0,
      log: new Log(LogLevel.WARN),
      cf: false,
      resourcePersistencePath: v3,
      workers: [
        {
          name: config.name,
          modules: true,
          scriptPath,
          // Module names are paths relative to this root; a bundle outside the working directory needs it.
          modulesRoot: path.dirname(scriptPath),
          compatibilityDate: config.compatibility_date,
          compatibilityFlags: config.compatibility_flags ?? [],
          // "development": mail lands in the outbox; PUBLIC_URL empty: links use the request's origin.
          bindings: { ...config.vars, ENVIRONMENT: "development", ...SECRETS },
          assets: {
            directory: path.join(root, config.assets.directory),
            binding: config.assets.binding,
            routerConfig: { has_user_worker: true },
          },
          d1Databases: Object.fromEntries(config.d1_databases.map((d) => [d.binding, d.database_id])),
          r2Buckets: Object.fromEntries(config.r2_buckets.map((b) => [b.binding, b.bucket_name])),
          durableObjects: Object.fromEntries(
            config.durable_objects.bindings.map((b) => [b.name, { className: b.class_name, useSQLite: true }]),
          ),
          queueProducers: Object.fromEntries(
            (config.queues?.producers ?? []).map((p) => [p.binding, { queueName: p.queue }]),
          ),
          ...(consumer
            ? {
                queueConsumers: Object.fromEntries(
                  (config.queues?.consumers ?? []).map((q) => [
                    q.queue,
                    { maxBatchSize: q.max_batch_size, maxBatchTimeout: 1, maxRetries: q.max_retries },
                  ]),
                ),
              }
            : {}),
          ratelimits: Object.fromEntries(
            (config.ratelimits ?? []).map((r) => [r.name, { namespace_id: r.namespace_id, simple: r.simple }]),
          ),
        },
      ],
    }),
  );
  const url = await mf.ready;
  // Migrations, in order, as `wrangler d1 migrations apply` would (once: a restart keeps them).
  const db = await mf.getD1Database("DB");
  const dir = path.join(root, config.d1_databases[0].migrations_dir ?? "migrations");
  for (const f of again
    ? []
    : readdirSync(dir)
        .filter((f) => f.endsWith(".sql"))
        .sort()) {
    const statements = unstable_splitSqlQuery(readFileSync(path.join(dir, f), "utf8")).filter((s) => s.trim());
    await db.batch(statements.map((s) => db.prepare(s)));
  }
  return {
    mf,
    restartInfo: { work, scriptPath },
    // localhost, not 127.0.0.1: browsers treat it as a secure context, so the console's Secure cookie
    // sticks over plain HTTP.
    url: `http://localhost:${url.port}`,
    persistTo,
    /** Stops the runtime; `keep` leaves its storage for `startWorker({ again })`. */
    async stop({ keep = false } = {}) {
      await mf.dispose();
      if (!keep) rmSync(work, { recursive: true, force: true });
    },
  };
}

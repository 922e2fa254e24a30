// The real Worker for the SDK's tests and the example smoke run: bundled like a deploy
// (`wrangler deploy --dry-run`) and started on loopback with miniflare, the way the bench does
// (scripts/bench/runtime.mjs: D1 with migrations, R2, Durable Objects, the Queue, rate limits
// raised out of the way). One instance serves a whole test run. A local key set stands in for
// Google's, so native sign-in with an ID token can run too.
import { spawnSync } from "node:child_process";
import { createServer } from "node:http";
import path from "node:path";
import { exportJWK, generateKeyPair } from "jose";
import { BENCH_SECRETS, readWranglerConfig, root, startOutpost } from "../../scripts/bench/runtime.mjs";
import { ensureDocsAssets } from "../../scripts/docs-assets.mjs";

export const JWT_SECRET = BENCH_SECRETS.JWT_SECRET;
export const SERVICE_KEY = BENCH_SECRETS.SERVICE_KEY;
export const GOOGLE_AUDIENCE = "sdk-test.apps.googleusercontent.com";

/**
 * Builds and starts the Worker; returns its base URL, the ID-token signing key (JWK) and a dispose function.
 * `build: false` reuses the bundle of an earlier start; `realLimits` keeps those limiters at their production budget;
 * `vars` overrides wrangler.toml's vars.
 */
export async function startWorker({ build = true, realLimits = [], vars = {} } = {}) {
  const outdir = path.join(root, "client", ".worker");
  if (build) {
    ensureDocsAssets();
    const wrangler = path.join(root, "node_modules", "wrangler", "bin", "wrangler.js");
    const r = spawnSync(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", outdir], {
      cwd: root,
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`wrangler deploy --dry-run failed:\n${r.stdout}\n${r.stderr}`);
  }

  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: "sdk-test", alg: "RS256", use: "sig" };
  // Google's keys, and a stand-in mail provider: the Worker POSTs each mail to /mail, tests read them back from it.
  const mails = [];
  const jwks = createServer((req, res) => {
    const json = (body) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (req.url !== "/mail") return json({ keys: [jwk] });
    if (req.method !== "POST") return json(mails);
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      mails.push(JSON.parse(body));
      json({ id: String(mails.length) });
    });
  });
  await new Promise((ok) => jwks.listen(0, "127.0.0.1", ok));
  const jwksUrl = `http://127.0.0.1:${jwks.address().port}/jwks`;

  const config = await readWranglerConfig();
  const mailUrl = `http://127.0.0.1:${jwks.address().port}/mail`;
  config.vars = {
    ...config.vars,
    GOOGLE_JWKS_URL: jwksUrl,
    GOOGLE_AUDIENCES: GOOGLE_AUDIENCE,
    MAIL_PROVIDER_URL: mailUrl,
    APP_LINK_BASE: "sdktest://app",
    PASSKEY_RP_ID: "sdk.example",
    PASSKEY_ORIGINS: "https://sdk.example",
    ...vars,
  };
  const rt = await startOutpost(path.join(outdir, "index.js"), config, { realLimits });
  return {
    url: rt.url,
    mailUrl,
    idTokenKey: await exportJWK(privateKey),
    async dispose() {
      await rt.dispose();
      await new Promise((ok) => jwks.close(ok));
    },
  };
}

// HTTP load generator, run as a child process of run.mjs so it never shares an event loop with
// miniflare's Node side. Input: one JSON argument (the scenario). Output: one JSON line.
//
// scenario = { url, method?, headers?, body?, connections, duration, warmup?,
//              refreshTokens? }  // refresh: live tokens; each answer's new token is sent next
import autocannon from "autocannon";

const sc = JSON.parse(process.argv[2]);

function run(opts) {
  return new Promise((resolve, reject) => {
    const inst = autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
    autocannon.track(inst, {
      renderProgressBar: false,
      renderResultsTable: false,
      renderLatencyTable: false,
      outputStream: process.stderr,
    });
  });
}

function options(duration) {
  const base = {
    url: sc.url,
    method: sc.method ?? "GET",
    headers: sc.headers ?? {},
    connections: sc.connections,
    duration,
    pipelining: 1,
    timeout: 30,
  };
  if (sc.body !== undefined) base.body = typeof sc.body === "string" ? sc.body : JSON.stringify(sc.body);
  if (sc.refreshTokens) {
    // Refresh tokens rotate: every request takes a live token from a shared queue and its answer
    // puts the new one back. With one request in flight per connection, the queue never runs dry.
    // (autocannon resets its per-connection context after every request, so it cannot hold the token.)
    const live = [...sc.refreshTokens];
    base.requests = [
      {
        method: "POST",
        setupRequest(req) {
          return { ...req, body: JSON.stringify({ refreshToken: live.shift() ?? "none-left" }) };
        },
        onResponse(status, body) {
          if (status === 200) live.push(JSON.parse(body).session.refreshToken);
        },
      },
    ];
  }
  return base;
}

// Warm-up (not measured), then the measured run. Token chains cannot be warmed up twice from
// the same pool, so the refresh scenario is measured cold.
if (sc.warmup && !sc.refreshTokens) await run(options(sc.warmup));
const res = await run(options(sc.duration));
const statusCodes = {};
for (const [k, v] of Object.entries(res)) {
  const m = /^(\d)xx$/.exec(k);
  if (m && v) statusCodes[k] = v;
}
process.stdout.write(
  `${JSON.stringify({
    requests: res.requests.total,
    reqPerSec: res.requests.total / res.duration,
    bytesPerSec: res.throughput.total / res.duration,
    p50: res.latency.p50,
    p99: res.latency.p99,
    errors: res.errors,
    timeouts: res.timeouts,
    non2xx: res.non2xx,
    statusCodes,
    duration: res.duration,
  })}\n`,
);

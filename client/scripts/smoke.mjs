// The example as a smoke test: starts the real Worker on loopback (as the tests do), runs
// examples/notes-and-chat.ts against it with the built SDK, and fails when the example fails.
import { spawn } from "node:child_process";
import path from "node:path";
import { startWorker } from "../test/worker.mjs";

const dir = path.resolve(import.meta.dirname, "..");
const w = await startWorker();
let code = 1;
try {
  code = await new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(dir, "examples", "notes-and-chat.ts")], {
      cwd: dir,
      stdio: "inherit",
      env: { ...process.env, OUTPOST_URL: w.url },
    });
    const timer = setTimeout(() => p.kill("SIGKILL"), 120_000);
    p.on("exit", (c) => {
      clearTimeout(timer);
      resolve(c ?? 1);
    });
  });
} finally {
  await w.dispose();
}
process.exit(code);

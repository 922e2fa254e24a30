import { defineConfig } from "vitest/config";

// The SDK against the real Worker over loopback HTTP and WebSocket (one Worker for the whole run).
export default defineConfig({
  test: {
    globalSetup: ["./test/global-setup.ts"],
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});

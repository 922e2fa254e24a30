import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      /** Test-only: migrations read by vitest.config.ts, applied by test/setup. */
      TEST_MIGRATIONS: D1Migration[];
      /** Test-only: base URL of the local stand-in server (test/standins). */
      STANDIN_URL: string;
    }
  }
}

declare module "vitest" {
  export interface ProvidedContext {
    standinUrl: string;
  }
}

/** The console's Hono context: bindings, and what its middleware puts on the context (`c.get`). */
import type { Config } from "../../../config";
import type { Database } from "../../../db";
import type { Lifecycle } from "../../../lifecycle";

export interface ConsoleEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    clientRequestId: string | null;
    config: Config;
    /** Every feature's lifecycle parts (deletion hooks, socket closers), from the root. */
    lifecycle: Lifecycle;
    /** On the primary: an operator acting on what it just saw must not read a lagging replica. */
    db: Database;
    /** Set for every page but the sign-in page. */
    admin: ConsoleAdmin;
    /** The synchronizer token every form of this admin's pages carries. */
    csrf: string;
    /** Set by routes that serve stored bytes: their answer keeps its own sandboxing CSP. */
    fileContent: boolean;
  };
}

export interface ConsoleAdmin {
  sessionId: string;
  userId: string;
  email: string | null;
  name: string | null;
  /** `aal2` when the sign-in proved a second factor. */
  aal: "aal1" | "aal2";
}

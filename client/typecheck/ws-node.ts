// Strict check (tsconfig.node.json): Node 22's global WebSocket (@types/node, no DOM lib).
import { createClient } from "@outpost/client";

export const fromGlobal = createClient({ url: "https://api.example.com", WebSocket: globalThis.WebSocket });

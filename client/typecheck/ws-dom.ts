// Strict check (tsconfig.dom.json): the DOM's WebSocket, as a browser or React Native app passes it.
import { createClient } from "@outpost/client";

export const fromGlobal = createClient({ url: "https://api.example.com", WebSocket });
export const fromWindow = createClient({ url: "https://api.example.com", WebSocket: window.WebSocket });

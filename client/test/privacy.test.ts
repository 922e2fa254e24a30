import { describe, expect, it } from "vitest";
import type { OutpostError } from "../src/index.js";
import { client, email, Net, PASSWORD, Sockets, signedIn } from "./helpers.js";

const refuse = (status: number, code: string) =>
  new Response(JSON.stringify({ status, code, title: code }), {
    status,
    headers: { "content-type": "application/problem+json" },
  });

describe("no access token in a URL", () => {
  for (const [status, code] of [
    [403, "forbidden"],
    [404, "not_found"],
  ] as const) {
    it(`a socket-ticket call answered ${status} is reported, never replaced by ?token=`, async () => {
      const net = new Net();
      const inner = net.fetch;
      net.fetch = async (input, init) =>
        new URL(input).pathname === "/v1/auth/socket-ticket" ? refuse(status, code) : inner(input, init);
      const sa = new Sockets();
      const a = client({ net, WebSocket: sa.Ctor });
      await a.auth.signUp({ email: email(), password: PASSWORD });
      const b = await signedIn();
      const room = await a.rooms.create({ memberIds: [b.user!.id] });
      const ra = a.room(room.id);
      const outcome = new Promise<string>((ok) => {
        ra.on("ready", () => ok("ready"));
        ra.on("stopped", (e: OutpostError) => ok(`stopped ${e.code}`));
      });
      ra.connect();
      expect(await outcome).toBe(`stopped ${code}`);
      expect(sa.all.filter((s) => /[?&]token=/.test(s.url))).toEqual([]);
      a.close();
      b.close();
    });
  }
});

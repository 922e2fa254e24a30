import { describe, expect, it } from "vitest";
import { OutpostError } from "../src/index.js";
import { BASE, client, email, expiredCopy, googleIdToken, Net, PASSWORD, signedIn } from "./helpers.js";

describe("sessions", () => {
  it("10 parallel calls with an access token the server finds expired → exactly one refresh, all succeed", async () => {
    const c = await signedIn();
    const s = c.auth.session!;
    // The server says token_expired; the device clock still thinks the token is good.
    c.auth.session = { ...s, accessToken: await expiredCopy(s.accessToken) };
    c.net.log.length = 0;
    const users = await Promise.all(Array.from({ length: 10 }, () => c.auth.me()));
    expect(users.every((u) => u.id === s.user!.id)).toBe(true);
    expect(c.net.count("POST", "/v1/auth/refresh")).toBe(1);
    expect(c.net.count("GET", "/v1/me")).toBe(20);
    expect(c.auth.session!.refreshToken).not.toBe(s.refreshToken);
    c.close();
  });

  // The device clock says the token is about to expire: the refresh goes out before the calls.
  it("10 parallel calls near expiry → one refresh, sent first", async () => {
    let now = Date.now();
    const c = await signedIn({ now: () => now });
    now += 15 * 60_000; // past expiry on the device clock
    c.net.log.length = 0;
    await Promise.all(Array.from({ length: 10 }, () => c.auth.me()));
    expect(c.net.log.map((e) => `${e.method} ${e.path}`)).toEqual([
      "POST /v1/auth/refresh",
      ...Array(10).fill("GET /v1/me"),
    ]);
    c.close();
  });

  it("a network error during refresh keeps the session; a revoked session signs out", async () => {
    const c = await signedIn();
    const events: string[] = [];
    c.auth.onAuthStateChange((e) => events.push(e));
    c.net.mode = "down";
    await expect(c.auth.refresh()).rejects.toMatchObject({ code: "network_error", status: 0 });
    expect(c.auth.session).not.toBeNull();
    c.net.mode = "up";

    // Another device of the same user ends this session.
    const other = await client();
    await other.auth.signInWithPassword({ email: c.user!.email!, password: PASSWORD });
    const mine = (await other.auth.listSessions()).find((x) => !x.current)!;
    await other.auth.revokeSession(mine.id);
    await expect(c.auth.refresh()).rejects.toMatchObject({ status: 401 });
    expect(c.auth.session).toBeNull();
    expect(events).toContain("SIGNED_OUT");
    c.close();
    other.close();
  });

  it("a refresh token presented again after two rotations: refresh_token_reused signs out", async () => {
    const a = await signedIn();
    const stolen = a.auth.session!.refreshToken;
    await a.auth.refresh();
    await a.auth.refresh();
    const b = await client();
    b.auth.session = { ...a.auth.session!, refreshToken: stolen };
    const err = await b.auth.refresh().then(
      () => null,
      (e: unknown) => e,
    );
    if (err === null) {
      // A server whose refresh grace (API v1.1) also covers this token answered with a working
      // session: nothing definitive happened, so the SDK must still be signed in.
      expect(b.auth.session).not.toBeNull();
    } else {
      expect(err).toBeInstanceOf(OutpostError);
      expect((err as OutpostError).code).toBe("refresh_token_reused");
      expect(b.auth.session).toBeNull();
    }
    a.close();
    b.close();
  });

  it("persists the session: a new client on the same storage starts signed in (INITIAL_SESSION)", async () => {
    const c = await signedIn();
    const again = client({ storage: c.storage });
    const first = await new Promise<[string, string | undefined]>((ok) =>
      again.auth.onAuthStateChange((e, s) => ok([e, s?.user?.id])),
    );
    expect(first).toEqual(["INITIAL_SESSION", c.user!.id]);
    expect((await again.auth.me()).id).toBe(c.user!.id);
    c.close();
    again.close();
  });

  it("guest → link keeps the id; sign out ends the session on the server", async () => {
    const c = client();
    const guest = await c.auth.signInAnonymously();
    expect(guest.anonymous).toBe(true);
    const mail = email("link");
    const linked = await c.auth.linkAccount({ email: mail, password: PASSWORD });
    expect(linked).toMatchObject({ id: guest.id, anonymous: false, email: mail });
    expect(c.user!.anonymous).toBe(false);
    const refresh = c.auth.session!.refreshToken;
    await c.auth.signOut();
    expect(c.auth.session).toBeNull();
    const probe = await fetch(`${BASE}/v1/auth/refresh`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ refreshToken: refresh }),
    });
    expect(probe.status).toBe(401);
    c.close();
  });

  it("signs in with a Google ID token; errors are OutpostError with status, code, errors, requestId", async () => {
    const c = client();
    const mail = email("google");
    const u = await c.auth.signInWithIdToken({
      provider: "google",
      idToken: await googleIdToken(`g-${mail}`, mail, "n0nce"),
      nonce: "n0nce",
    });
    expect(u).toMatchObject({ email: mail });
    expect(c.auth.session).not.toBeNull();

    const err = await client()
      .auth.signUp({ email: "not-an-email", password: "x" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutpostError);
    expect(err).toMatchObject({ status: 400, code: "validation_failed" });
    expect((err as OutpostError).errors.length).toBeGreaterThan(0);
    expect((err as OutpostError).requestId).toMatch(/.+/);
    c.close();
  });

  it("sends back the latest Outpost-Bookmark it saw", async () => {
    const seen: (string | null)[] = [];
    const net = new Net();
    const inner = net.fetch;
    net.fetch = async (input, init) => {
      seen.push(new Headers(init?.headers).get("outpost-bookmark"));
      const res = await inner(input, init);
      const h = new Headers(res.headers);
      h.set("outpost-bookmark", `bm-${seen.length}`);
      return new Response(res.body, { status: res.status, headers: h });
    };
    const c = await signedIn({ net });
    await c.auth.me();
    await c.auth.me();
    expect(seen).toEqual([null, "bm-1", "bm-2"]);
    c.close();
  });
});

describe("small session fixes", () => {
  it("a revoked refresh token is reported as session_revoked, and the client signs out", async () => {
    const c = await signedIn();
    const events: string[] = [];
    c.auth.onAuthStateChange((e) => events.push(e));
    const [mine] = await c.auth.listSessions();
    await c.auth.revokeSession(mine!.id);
    await expect(c.auth.refresh()).rejects.toMatchObject({ status: 401, code: "session_revoked" });
    expect(c.auth.session).toBeNull();
    expect(events).toContain("SIGNED_OUT");
    c.close();
  });

  it("USER_UPDATED fires only when the user changed", async () => {
    const c = await signedIn();
    const events: string[] = [];
    c.auth.onAuthStateChange((e) => events.push(e));
    await c.auth.me();
    await c.auth.me();
    await new Promise((r) => setTimeout(r, 10));
    expect(events.filter((e) => e === "USER_UPDATED")).toEqual([]);
    await c.auth.updateMe({ name: "Renamed" });
    await c.auth.me();
    expect(events.filter((e) => e === "USER_UPDATED")).toEqual(["USER_UPDATED"]);
    c.close();
  });

  it("an access-token lifetime under the refresh margin does not loop refreshes", async () => {
    // The server's tokens live 15 min; a 20-min margin stands for a lifetime shorter than the margin.
    const c = await signedIn({ refreshMarginMs: 20 * 60_000 });
    await new Promise((r) => setTimeout(r, 1500));
    expect(c.net.count("POST", "/v1/auth/refresh")).toBeLessThanOrEqual(1);
    expect(c.auth.session).not.toBeNull();
    c.close();
  });
});

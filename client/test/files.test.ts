import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { OutpostError } from "../src/index.js";
import { BASE, client, PASSWORD, signedIn } from "./helpers.js";

const MiB = 1024 * 1024;

async function bytesOf(url: string, token?: string): Promise<Uint8Array> {
  const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  expect(res.status).toBe(200);
  return new Uint8Array(await res.arrayBuffer());
}

describe("files", () => {
  it("a resumable upload aborted at half resumes after a restart from the URL kept in storage", async () => {
    const opts = { largeUploadBytes: MiB, chunkSize: MiB + 7 };
    const c = await signedIn(opts);
    const data = randomBytes(6 * MiB + 123);
    const ctl = new AbortController();
    const first = c.files.upload(data, {
      name: "big.bin",
      contentType: "application/octet-stream",
      signal: ctl.signal,
      onProgress: (sent, total) => sent >= total / 2 && ctl.abort(),
    });
    await expect(first).rejects.toMatchObject({ code: "aborted" });
    const stored = JSON.parse((await c.storage.getItem("outpost.uploads"))!) as Record<string, { uploadUrl: string }>;
    const [entry] = Object.values(stored);
    expect(entry!.uploadUrl).toMatch(/\/v1\/uploads\/[0-9a-f-]{36}$/);
    const head = await fetch(entry!.uploadUrl, {
      method: "HEAD",
      headers: { authorization: `Bearer ${c.auth.session!.accessToken}`, "tus-resumable": "1.0.0" },
    });
    const kept = Number(head.headers.get("upload-offset"));
    expect(kept).toBeGreaterThan(MiB);
    expect(kept).toBeLessThan(data.length);
    c.close();

    // The app restarts: a new client on the same storage, the same file again.
    const again = client({ storage: c.storage, ...opts });
    await again.ready;
    const progress: number[] = [];
    const file = await again.files.upload(data, {
      name: "big.bin",
      contentType: "application/octet-stream",
      onProgress: (sent) => progress.push(sent),
    });
    expect(progress[0]).toBeGreaterThanOrEqual(kept);
    expect(file).toMatchObject({ name: "big.bin", size: data.length, visibility: "private" });
    expect(
      Buffer.from(await bytesOf(`${BASE}/v1/files/${file.id}/content`, again.auth.session!.accessToken)).equals(data),
    ).toBe(true);
    expect(await again.storage.getItem("outpost.uploads")).toBeNull();
    again.close();
  });

  it("a large team file goes resumable into the team, and the team lists it", async () => {
    const c = await signedIn({ largeUploadBytes: MiB, chunkSize: MiB });
    const team = await c.teams.create("Album");
    const data = randomBytes(2 * MiB + 5);
    let chunks = 0;
    const file = await c.files.upload(data, {
      name: "clip.bin",
      contentType: "application/octet-stream",
      teamId: team.id,
      onProgress: () => chunks++,
    });
    expect(chunks).toBeGreaterThan(1);
    expect(file).toMatchObject({ name: "clip.bin", size: data.length, teamId: team.id });
    const listed = await c.files.list({ teamId: team.id }).all();
    expect(listed.map((f) => f.id)).toEqual([file.id]);
    // Not among the caller's own files.
    expect((await c.files.list().all()).map((f) => f.id)).not.toContain(file.id);
    c.close();
  });

  it("small files go in one request; signed URLs are cached until they expire; thumbnail URLs", async () => {
    const c = await signedIn();
    const text = new TextEncoder().encode("hello outpost");
    const f = await c.files.upload(text, { name: "hello.txt", contentType: "text/plain" });
    expect(f).toMatchObject({ name: "hello.txt", size: text.length, contentType: "text/plain" });
    expect(c.net.count("POST", /^\/v1\/files\?/)).toBe(1);

    const u1 = await c.files.signedUrl(f.id);
    const u2 = await c.files.signedUrl(f.id);
    expect(u2).toBe(u1);
    expect(c.net.count("POST", `/v1/files/${f.id}/signed-url`)).toBe(1);
    expect(new TextDecoder().decode(await bytesOf(u1))).toBe("hello outpost");
    expect(c.files.thumbnailUrl(f.id, "sm")).toBe(`${BASE}/v1/files/${f.id}/content?thumb=sm`);
    expect(await c.files.signedUrl(f.id, { thumb: "md" })).toBe(`${u1}&thumb=md`);
    expect((await c.files.list()).items.map((x) => x.id)).toEqual([f.id]);
    await c.files.delete(f.id);
    const err = (await c.files.get(f.id).catch((e: unknown) => e)) as OutpostError;
    expect(err).toMatchObject({ status: 404, code: "not_found" });
    c.close();
  });
});

describe("push", () => {
  it("registers the device on sign-in and removes it on sign-out", async () => {
    const c = await signedIn();
    const mail = c.user!.email!;
    const dev = await c.registerDevice({ token: "ExponentPushToken[sdk-test]", platform: "ios", provider: "expo" });
    expect(dev).toMatchObject({ token: "ExponentPushToken[sdk-test]", platform: "ios" });
    const other = client();
    await other.auth.signInWithPassword({ email: mail, password: PASSWORD });
    const devices = () =>
      other.request<{ items: { token: string }[] }>("/v1/devices").then((r) => r.items.map((d) => d.token));
    expect(await devices()).toEqual(["ExponentPushToken[sdk-test]"]);

    await c.auth.signOut();
    expect(await devices()).toEqual([]);

    // Signing in again registers the remembered token for the app.
    await c.auth.signInWithPassword({ email: mail, password: PASSWORD });
    expect(await devices()).toEqual(["ExponentPushToken[sdk-test]"]);
    await c.unregisterDevice();
    expect(await devices()).toEqual([]);
    c.close();
    other.close();
  });
});

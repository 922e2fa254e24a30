/**
 * Thumbnails follow the original's access rules: public images for anyone; private ones for the
 * owner, the service key and signed URLs (a URL for the original also opens its thumbnails; a
 * URL for one preset opens only that preset). Unknown presets and non-images → 400.
 */

import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { getConfig } from "../../../src/config";
import { createDb } from "../../../src/db";
import { getFile } from "../../../src/features/files/service";
import { api, expectProblem, serviceKey, signup, type TestUser } from "../../helpers/api";
import { makePng, webpSize } from "./image-fixtures";
import { call, countingEnv, upload } from "./image-helpers";

let owner: TestUser;
let stranger: TestUser;
let privateId: string;
let publicId: string;
let textId: string;
const e = countingEnv().env;

beforeAll(async () => {
  owner = await signup();
  stranger = await signup();
  privateId = (await upload(e, owner.accessToken, await makePng(200, 100), "image/png", "private")).id;
  publicId = (await upload(e, owner.accessToken, await makePng(200, 100), "image/png", "public")).id;
  textId = (
    await call(e, "/v1/files?name=n.txt&visibility=public", {
      token: owner.accessToken,
      raw: "plain text",
      headers: { "content-type": "text/plain" },
    })
  ).json.id;
});

const signedUrl = async (id: string, body: Record<string, unknown> = {}) => {
  const res = await api(`/v1/files/${id}/signed-url`, { token: owner.accessToken, body: { expiresIn: 60, ...body } });
  expect(res.status, res.text).toBe(200);
  const u = new URL(res.body.url as string);
  return u.pathname + u.search;
};

describe("thumbnails: access", () => {
  // No token → 404, a stranger → 404, a garbage token → 401; the owner and the service key → 200.
  it("serves a private thumbnail only to the owner and the service key", async () => {
    const path = `/v1/files/${privateId}/content?thumb=sm`;
    expectProblem(await api(path), 404, "not_found");
    expectProblem(await api(path, { token: stranger.accessToken }), 404, "not_found");
    expectProblem(await api(path, { token: "garbage.token.here" }), 401, "unauthorized");
    const mine = await call(e, path, { token: owner.accessToken });
    expect(mine.status).toBe(200);
    expect(mine.headers.get("cache-control")).toBe("private, no-cache");
    expect(webpSize(mine.bytes)).toEqual({ width: 160, height: 80 });
    expect((await call(e, path, { token: serviceKey() })).status).toBe(200);
  });

  it("a public image's thumbnail needs no token", async () => {
    const res = await call(e, `/v1/files/${publicId}/content?thumb=sq`);
    expect(res.status).toBe(200);
    expect(webpSize(res.bytes)).toEqual({ width: 160, height: 160 });
  });

  it("a signed URL for the original also opens its thumbnails", async () => {
    const path = await signedUrl(privateId);
    expect(path).not.toContain("thumb=");
    const res = await call(e, `${path}&thumb=md`);
    expect(res.status).toBe(200);
    expect(webpSize(res.bytes)).toEqual({ width: 200, height: 100 });
  });

  it("a signed URL for one preset opens that preset only, not another preset or the original", async () => {
    const path = await signedUrl(privateId, { thumb: "sq" });
    expect(path).toContain("&thumb=sq");
    const res = await call(e, path);
    expect(res.status).toBe(200);
    expect(webpSize(res.bytes)).toEqual({ width: 160, height: 160 });
    expectProblem(await api(path.replace("thumb=sq", "thumb=sm")), 403, "forbidden");
    expectProblem(await api(path.replace("&thumb=sq", "")), 403, "forbidden");
  });

  it("a tampered or expired signed thumbnail URL → 403; a signature for another file → 403", async () => {
    const path = await signedUrl(privateId, { thumb: "sm" });
    const u = new URL(`https://x${path}`);
    const sig = u.searchParams.get("sig")!;
    const exp = u.searchParams.get("exp")!;
    const flipped = (sig[0] === "A" ? "B" : "A") + sig.slice(1);
    expectProblem(await api(`/v1/files/${privateId}/content?exp=${exp}&sig=${flipped}&thumb=sm`), 403, "forbidden");
    expectProblem(
      await api(`/v1/files/${privateId}/content?exp=${Number(exp) + 60}&sig=${sig}&thumb=sm`),
      403,
      "forbidden",
    );
    expectProblem(await api(`/v1/files/${publicId}/content?exp=${exp}&sig=${sig}&thumb=sm`), 403, "forbidden");
  });

  // thumbnailUrl serves lists such as the admin console.
  it("thumbnailUrl: plain for public, signed for private, null for non-images", async () => {
    const { thumbnailUrl } = await import("../../../src/features/files/images");
    const db = createDb(env.DB);
    const config = getConfig(env);
    const pub = await thumbnailUrl(config, "https://outpost.test", (await getFile(db, publicId))!, "sm");
    expect(pub).toBe(`https://outpost.test/v1/files/${publicId}/content?thumb=sm`);
    const priv = await thumbnailUrl(config, "https://outpost.test", (await getFile(db, privateId))!, "sq", 60);
    const res = await call(e, new URL(priv!).pathname + new URL(priv!).search);
    expect(res.status).toBe(200);
    expect(webpSize(res.bytes)).toEqual({ width: 160, height: 160 });
    expect(await thumbnailUrl(config, "https://outpost.test", (await getFile(db, textId))!, "sm")).toBeNull();
  });
});

describe("thumbnails: bad requests", () => {
  it("an unknown preset → 400 validation_failed naming `thumb`", async () => {
    for (const bad of ["xl", "", "SM", "sm%00", "../sm", "constructor"]) {
      const p = expectProblem(await api(`/v1/files/${publicId}/content?thumb=${bad}`), 400, "validation_failed");
      expect(p.errors?.[0]?.path).toBe("thumb");
    }
    expectProblem(
      await api(`/v1/files/${publicId}/signed-url`, { token: owner.accessToken, body: { thumb: "xl" } }),
      400,
      "validation_failed",
    );
  });

  it("a thumbnail of a file that is not an image → 400 validation_failed (content and signed URL)", async () => {
    expectProblem(await api(`/v1/files/${textId}/content?thumb=sm`), 400, "validation_failed");
    expectProblem(
      await api(`/v1/files/${textId}/signed-url`, { token: owner.accessToken, body: { thumb: "sm" } }),
      400,
      "validation_failed",
    );
  });
});

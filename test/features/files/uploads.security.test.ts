import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, expectProblem, serviceKey, signup } from "../../helpers/api";
import { pngBytes } from "./helpers";

const TUS = { "tus-resumable": "1.0.0" };

async function create(token: string) {
  const res = await api("/v1/uploads", {
    method: "POST",
    token,
    headers: { ...TUS, "upload-length": "100", "upload-metadata": `filetype ${btoa("image/png")}` },
  });
  return new URL(res.headers.get("location")!).pathname;
}

describe("uploads (tus): security", () => {
  it("needs a user token: none → 401, garbage → 401, service key → 403", async () => {
    expectProblem(
      await api("/v1/uploads", { method: "POST", headers: { ...TUS, "upload-length": "1" } }),
      401,
      "unauthorized",
    );
    expectProblem(
      await api("/v1/uploads", {
        method: "POST",
        token: "garbage.token.here",
        headers: { ...TUS, "upload-length": "1" },
      }),
      401,
      "unauthorized",
    );
    expectProblem(
      await api("/v1/uploads", { method: "POST", token: serviceKey(), headers: { ...TUS, "upload-length": "1" } }),
      403,
      "forbidden",
    );
  });

  it("hides another user's upload: HEAD, PATCH and DELETE → 404, and nothing changes", async () => {
    const owner = await signup();
    const stranger = await signup();
    const path = await create(owner.accessToken);
    expect((await api(path, { method: "HEAD", token: stranger.accessToken, headers: TUS })).status).toBe(404);
    expectProblem(
      await api(path, {
        method: "PATCH",
        token: stranger.accessToken,
        raw: pngBytes(10),
        headers: { ...TUS, "content-type": "application/offset+octet-stream", "upload-offset": "0" },
      }),
      404,
      "not_found",
    );
    expectProblem(await api(path, { method: "DELETE", token: stranger.accessToken, headers: TUS }), 404, "not_found");
    const head = await api(path, { method: "HEAD", token: owner.accessToken, headers: TUS });
    expect(head.status).toBe(200);
    expect(head.headers.get("upload-offset")).toBe("0");
  });

  it("never uses the client's filename as the storage key", async () => {
    const u = await signup();
    const res = await api("/v1/uploads", {
      method: "POST",
      token: u.accessToken,
      headers: {
        ...TUS,
        "upload-length": "10",
        "upload-metadata": `filename ${btoa("../../f/victim")},filetype ${btoa("image/png")}`,
      },
    });
    const path = new URL(res.headers.get("location")!).pathname;
    const done = await api(path, {
      method: "PATCH",
      token: u.accessToken,
      raw: pngBytes(10),
      headers: { ...TUS, "content-type": "application/offset+octet-stream", "upload-offset": "0" },
    });
    const fileId = done.headers.get("outpost-file-id");
    const file = await api(`/v1/files/${fileId}`, { token: u.accessToken });
    expect(file.body.name).toBe("victim");
    // The bytes sit under the server-made key; no key anywhere in the bucket comes from the name.
    expect(await env.MEDIA.head(`f/${fileId}`)).not.toBeNull();
    const keys = (await env.MEDIA.list()).objects.map((o) => o.key);
    expect(keys.filter((k) => k.includes("victim") || k.includes(".."))).toEqual([]);
  });
});

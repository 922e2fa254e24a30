import { describe, expect, it } from "vitest";
import { parseRange } from "../../../src/features/files/content";
import { api, expectProblem, signup } from "../../helpers/api";
import { bytesOf, uploadPng } from "./helpers";

describe("files: ranges and conditional requests", () => {
  it("serves byte ranges with 206 and Content-Range", async () => {
    const u = await signup();
    const f = await uploadPng(u.accessToken, { size: 10_000, visibility: "public" });
    // A public PNG is stored scrubbed (files/scrub.ts: these test bytes are no real PNG, so all past
    // the signature becomes zeros): compare with what is stored.
    const all = (await bytesOf(`/v1/files/${f.id}/content`)).bytes;
    expect(all.length).toBe(10_000);
    const cases: [string, number, number][] = [
      ["bytes=0-99", 0, 100],
      ["bytes=9990-", 9990, 10],
      ["bytes=-25", 9975, 25],
      ["bytes=5000-99999", 5000, 5000],
    ];
    for (const [range, start, length] of cases) {
      const res = await bytesOf(`/v1/files/${f.id}/content`, { headers: { range } });
      expect(res.status).toBe(206);
      expect(res.headers.get("content-range")).toBe(`bytes ${start}-${start + length - 1}/10000`);
      expect(res.headers.get("content-length")).toBe(String(length));
      expect(res.bytes).toEqual(all.subarray(start, start + length));
    }
  });

  it("answers a range past the end with 416 and the size", async () => {
    const u = await signup();
    const f = await uploadPng(u.accessToken, { size: 100 });
    const res = await api(`/v1/files/${f.id}/content`, { token: u.accessToken, headers: { range: "bytes=100-200" } });
    expectProblem(res, 416, "range_not_satisfiable");
    expect(res.headers.get("content-range")).toBe("bytes */100");
  });

  it("serves the whole file for several ranges or a range it does not understand", async () => {
    const u = await signup();
    const f = await uploadPng(u.accessToken, { size: 300 });
    for (const range of ["bytes=0-1,5-9", "items=0-1", "bytes=9-2"]) {
      const res = await bytesOf(`/v1/files/${f.id}/content`, { token: u.accessToken, headers: { range } });
      expect(res.status).toBe(200);
      expect(res.bytes.length).toBe(300);
    }
  });

  it("answers If-None-Match with 304 and honours If-Range", async () => {
    const u = await signup();
    const f = await uploadPng(u.accessToken, { size: 300 });
    const first = await bytesOf(`/v1/files/${f.id}/content`, { token: u.accessToken });
    const etag = first.headers.get("etag")!;
    expect(etag).toBe(`"${f.sha256}"`);
    const again = await bytesOf(`/v1/files/${f.id}/content`, {
      token: u.accessToken,
      headers: { "if-none-match": `"other", ${etag}` },
    });
    expect(again.status).toBe(304);
    expect(again.bytes.length).toBe(0);
    expect(again.headers.get("etag")).toBe(etag);
    const stale = await bytesOf(`/v1/files/${f.id}/content`, {
      token: u.accessToken,
      headers: { range: "bytes=0-9", "if-range": '"old"' },
    });
    expect(stale.status).toBe(200);
    const fresh = await bytesOf(`/v1/files/${f.id}/content`, {
      token: u.accessToken,
      headers: { range: "bytes=0-9", "if-range": etag },
    });
    expect(fresh.status).toBe(206);
  });

  it("answers HEAD with the headers and no body", async () => {
    const u = await signup();
    const f = await uploadPng(u.accessToken, { size: 300 });
    const res = await api(`/v1/files/${f.id}/content`, {
      method: "HEAD",
      token: u.accessToken,
      headers: { range: "bytes=10-19" },
    });
    expect(res.status).toBe(206);
    expect(res.headers.get("content-length")).toBe("10");
    expect(res.text).toBe("");
  });

  it("parses ranges at the edges", () => {
    expect(parseRange("bytes=0-0", 1)).toEqual({ offset: 0, length: 1 });
    expect(parseRange("bytes=-0", 10)).toBe("unsatisfiable");
    expect(parseRange("bytes=-50", 10)).toEqual({ offset: 0, length: 10 });
    expect(parseRange("bytes=0-", 0)).toBe("unsatisfiable");
    expect(parseRange(null, 10)).toBeNull();
  });
});

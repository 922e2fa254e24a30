/**
 * Files that are not verified media are downloads, never pages: `application/octet-stream`,
 * `Content-Disposition: attachment`, `nosniff` and a sandbox, on every path that serves bytes
 * (plain, HEAD, Range, If-None-Match, signed URL, public and private).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { api, signup, type TestUser } from "../../helpers/api";
import { bytesOf, pathOf, pngBytes, uploadRaw } from "./helpers";

let u: TestUser;
beforeAll(async () => {
  u = await signup();
});

/** Script-bearing bodies under the types a browser would render or run. */
const hostile: { type: string | null; name: string; body: string }[] = [
  { type: "text/html; charset=utf-8", name: "page.html", body: "<html><script>alert(1)</script></html>" },
  { type: "application/xhtml+xml", name: "page.xhtml", body: '<html xmlns="http://www.w3.org/1999/xhtml"/>' },
  { type: "text/javascript", name: "app.js", body: "alert(document.cookie)" },
  { type: "application/javascript", name: "app.mjs", body: "alert(1)" },
  { type: "text/xml", name: "x.xml", body: "<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>" },
  { type: "text/plain", name: "notes.txt", body: "<script>alert(1)</script>" },
  { type: null, name: "blob", body: "<html><script>alert(1)</script></html>" },
];

function expectDownload(headers: Headers, what: string) {
  expect(headers.get("content-type"), what).toBe("application/octet-stream");
  expect(headers.get("content-disposition"), what).toMatch(/^attachment;/);
  expect(headers.get("x-content-type-options"), what).toBe("nosniff");
  expect(headers.get("content-security-policy"), what).toBe("default-src 'none'; sandbox");
}

describe("downloads: user files that are not verified media", () => {
  it("are served as application/octet-stream attachments on the plain, HEAD, Range and 304 paths", async () => {
    for (const h of hostile) {
      for (const visibility of ["public", "private"] as const) {
        const res = await uploadRaw(u.accessToken, h.body, { type: h.type ?? "", name: h.name, visibility });
        expect(res.status, res.text).toBe(201);
        const path = `/v1/files/${res.body.id}/content`;
        const what = `${h.type} ${visibility}`;
        const token = visibility === "private" ? u.accessToken : null;
        const whole = await bytesOf(path, { token });
        expect(whole.status).toBe(200);
        expectDownload(whole.headers, what);
        expect(new TextDecoder().decode(whole.bytes)).toBe(h.body);
        const head = await api(path, { method: "HEAD", token });
        expect(head.status).toBe(200);
        expectDownload(head.headers, `${what} HEAD`);
        const range = await bytesOf(path, { token, headers: { range: "bytes=0-4" } });
        expect(range.status).toBe(206);
        expectDownload(range.headers, `${what} range`);
        const again = await bytesOf(path, { token, headers: { "if-none-match": whole.headers.get("etag")! } });
        expect(again.status).toBe(304);
        expect(again.headers.get("x-content-type-options")).toBe("nosniff");
        expect(again.headers.get("content-type")).not.toMatch(/html|xml|javascript/);
      }
    }
  });

  it("a signed URL serves them the same way (whole and ranged)", async () => {
    const res = await uploadRaw(u.accessToken, "<html><script>alert(1)</script></html>", {
      type: "text/html",
      name: "signed.html",
    });
    const signed = await api(`/v1/files/${res.body.id}/signed-url`, { token: u.accessToken, body: { expiresIn: 60 } });
    expect(signed.status).toBe(200);
    const whole = await bytesOf(pathOf(signed.body.url));
    expect(whole.status).toBe(200);
    expectDownload(whole.headers, "signed");
    const range = await bytesOf(pathOf(signed.body.url), { headers: { range: "bytes=-3" } });
    expect(range.status).toBe(206);
    expectDownload(range.headers, "signed range");
  });

  it("verified media keeps its own type, inline (the metadata keeps the declared type either way)", async () => {
    const png = await uploadRaw(u.accessToken, pngBytes(300), { type: "image/png", name: "p.png" });
    const served = await bytesOf(`/v1/files/${png.body.id}/content`, { token: u.accessToken });
    expect(served.headers.get("content-type")).toBe("image/png");
    expect(served.headers.get("content-disposition")).toMatch(/^inline;/);
    expect(served.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await uploadRaw(u.accessToken, "<p>hi</p>", { type: "text/html", name: "p.html" });
    expect(html.body.contentType).toBe("text/html");
  });
});

/**
 * Before hooks (src/app/logic.ts): they run for every writer before the write, may change the data
 * or refuse it with the app's own status and code, and a refusal writes nothing at all.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { api, expectProblem, serviceKey, signup, type TestUser, uniqueEmail } from "../../helpers/api";
import { signIn, visit } from "../admin/console-helpers";
import { signupAdmin } from "../admin/helpers";
import { pngBytes, uploadRaw } from "../files/helpers";

const SPAM = "see http://spam.example/offer";

/**
 * Every row count the write paths touch: records, the change log, the events outbox, accounts, files.
 * (`event_runs` is left out: the Queue's background drains of earlier tests' events write it.)
 */
async function counts() {
  const tables = ["app_posts", "app_comments", "record_changes", "events", "users", "files", "uploads"];
  const rows = await env.DB.batch(tables.map((t) => env.DB.prepare(`SELECT count(*) AS n FROM ${t}`)));
  return Object.fromEntries(tables.map((t, i) => [t, (rows[i]!.results[0] as { n: number }).n]));
}

let alice: TestUser;
beforeAll(async () => {
  alice = await signup();
});

describe("posts: before create and update refuse spam", () => {
  it("a create is refused with the app's status and code as problem+json, and nothing is written", async () => {
    const before = await counts();
    const res = await api("/v1/collections/posts/records", { token: alice.accessToken, body: { text: SPAM } });
    expectProblem(res, 422, "content_refused");
    expect(res.body).toMatchObject({ type: "about:blank", title: "Unprocessable Content", status: 422 });
    expect(res.body.detail).toBe("Posts may not link to spam.");
    expect(await counts()).toEqual(before);
  });

  it("the service key is refused too (hooks run for every writer)", async () => {
    const before = await counts();
    const res = await api("/v1/collections/posts/records", { token: serviceKey(), body: { text: SPAM } });
    expectProblem(res, 422, "content_refused");
    expect(await counts()).toEqual(before);
  });

  it("PATCH and PUT are refused; the stored post is unchanged", async () => {
    const post = (await api("/v1/collections/posts/records", { token: alice.accessToken, body: { text: "fine" } }))
      .body;
    const before = await counts();
    const path = `/v1/collections/posts/records/${post.id}`;
    expectProblem(
      await api(path, { method: "PATCH", token: alice.accessToken, body: { text: SPAM } }),
      422,
      "content_refused",
    );
    expectProblem(
      await api(path, { method: "PUT", token: alice.accessToken, body: { text: SPAM } }),
      422,
      "content_refused",
    );
    expect(await counts()).toEqual(before);
    expect((await api(path, { token: alice.accessToken })).body).toMatchObject({ text: "fine", version: 1 });
  });

  it("a batch with one refused operation writes none of its operations", async () => {
    const before = await counts();
    const res = await api("/v1/batch", {
      token: alice.accessToken,
      body: {
        operations: [
          { op: "create", collection: "posts", data: { text: "a good post" } },
          { op: "create", collection: "posts", data: { text: SPAM } },
        ],
      },
    });
    expectProblem(res, 422, "content_refused");
    expect(await counts()).toEqual(before);
  });

  it("the console's edit form is refused too: the form comes back with the app's message, nothing saved", async () => {
    const post = (await api("/v1/collections/posts/records", { token: alice.accessToken, body: { text: "clean" } }))
      .body;
    const { b, csrf } = await signIn(await signupAdmin());
    const before = await counts();
    const res = await visit(b, `/admin/collections/posts/${post.id}`, { _csrf: csrf, _version: "1", text: SPAM });
    expect(res.status).toBe(422);
    expect(res.html).toContain("Not saved: Posts may not link to spam.");
    expect(await counts()).toEqual(before);
    expect((await api(`/v1/collections/posts/records/${post.id}`)).body).toMatchObject({ text: "clean", version: 1 });
  });

  it("text without the spam link is stored", async () => {
    const res = await api("/v1/collections/posts/records", {
      token: alice.accessToken,
      body: { text: "spam.example" },
    });
    expect(res.status).toBe(201);
  });
});

describe("comments: before create changes the data", () => {
  it("the stored text is trimmed, through the route and through a batch", async () => {
    const post = (await api("/v1/collections/posts/records", { token: alice.accessToken, body: { text: "p" } })).body;
    const one = await api("/v1/collections/comments/records", {
      token: alice.accessToken,
      body: { postId: post.id, text: "  hello  " },
    });
    expect(one.status).toBe(201);
    expect(one.body.text).toBe("hello");
    const batch = await api("/v1/batch", {
      token: alice.accessToken,
      body: { operations: [{ op: "create", collection: "comments", data: { postId: post.id, text: "\tthere\n" } }] },
    });
    expect(batch.status).toBe(200);
    expect(batch.body.results[0].text).toBe("there");
    const stored = await env.DB.prepare("SELECT text FROM app_comments WHERE id = ?").bind(one.body.id).first();
    expect(stored).toEqual({ text: "hello" });
  });

  it("data a hook hands back is checked like a client's: a comment of only spaces trims to nothing (400)", async () => {
    const post = (await api("/v1/collections/posts/records", { token: alice.accessToken, body: { text: "p" } })).body;
    const before = await counts();
    const res = await api("/v1/collections/comments/records", {
      token: alice.accessToken,
      body: { postId: post.id, text: "   " },
    });
    // The hook's output breaks the schema (min 1 character): refused like a body that did.
    expectProblem(res, 400, "validation_failed");
    expect(res.body.errors).toEqual([{ path: "text", message: expect.any(String) }]);
    expect(await counts()).toEqual(before);
  });
});

describe("accounts: before create refuses throwaway domains", () => {
  it("a sign-up with one is refused (422 email_refused) and makes no account, session or event", async () => {
    const before = await counts();
    const sessions = await env.DB.prepare("SELECT count(*) AS n FROM sessions").first();
    const res = await api("/v1/auth/signup", {
      body: { email: `someone.${crypto.randomUUID().slice(0, 8)}@disposable.test`, password: "correct horse battery" },
    });
    expectProblem(res, 422, "email_refused");
    expect(await counts()).toEqual(before);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM sessions").first()).toEqual(sessions);
  });

  it("other domains and guests sign up as before", async () => {
    expect(
      (await api("/v1/auth/signup", { body: { email: uniqueEmail(), password: "correct horse battery" } })).status,
    ).toBe(201);
    expect((await api("/v1/auth/anonymous", { body: {} })).status).toBe(201);
  });
});

describe("files: before create refuses installers, before any byte is stored", () => {
  it("a simple upload named like an installer is refused; no file row, no object, no quota used", async () => {
    const before = await counts();
    const objects = (await env.MEDIA.list()).objects.length;
    const res = await uploadRaw(alice.accessToken, pngBytes(2000), { name: "setup.exe" });
    expectProblem(res, 422, "file_refused");
    expect(await counts()).toEqual(before);
    expect((await env.MEDIA.list()).objects.length).toBe(objects);
    expect((await uploadRaw(alice.accessToken, pngBytes(2000), { name: "photo.png" })).status).toBe(201);
  });

  it("a resumable upload named like one is refused at creation; no upload row", async () => {
    const before = await counts();
    const b64 = (s: string) => btoa(s);
    const res = await api("/v1/uploads", {
      method: "POST",
      token: alice.accessToken,
      headers: {
        "tus-resumable": "1.0.0",
        "upload-length": "2000",
        "upload-metadata": `filename ${b64("app.apk")},filetype ${b64("image/png")}`,
      },
    });
    expectProblem(res, 422, "file_refused");
    expect(await counts()).toEqual(before);
  });
});

import { Upload } from "tus-js-client";
import { describe, expect, it } from "vitest";
import { api, signup } from "../../helpers/api";
import { bytesOf, pngBytes } from "./helpers";
import { FetchStack, MemoryUrlStorage } from "./tus-stack";

const MiB = 1024 * 1024;
const ENDPOINT = "https://outpost.test/v1/uploads";

/** Runs one tus-js-client upload to its end: resolves on success, rejects with the client's error. */
function run(upload: Upload, events: { onSuccess?: () => void; onError?: (e: Error) => void }): Promise<void> {
  return new Promise((resolve, reject) => {
    events.onSuccess = resolve;
    events.onError = reject;
    upload.start();
  });
}

function options(
  token: string,
  stack: FetchStack,
  storage: MemoryUrlStorage,
  events: { onSuccess?: () => void; onError?: (e: Error) => void },
  fileIds: string[],
  extra: Record<string, unknown> = {},
) {
  return {
    endpoint: ENDPOINT,
    chunkSize: 3 * MiB + 1,
    retryDelays: null,
    headers: { authorization: `Bearer ${token}` },
    metadata: { filename: "clip.png", filetype: "image/png", visibility: "private" },
    httpStack: stack,
    urlStorage: storage,
    onSuccess: () => events.onSuccess?.(),
    onError: (e: Error) => events.onError?.(e),
    onAfterResponse: (_req: unknown, res: { getHeader(n: string): string | undefined }) => {
      const id = res.getHeader("Outpost-File-Id");
      if (id) fileIds.push(id);
    },
    ...extra,
  };
}

describe("tus: driven by tus-js-client", () => {
  it("resumes an interrupted upload in a new session and produces the same bytes", async () => {
    const u = await signup();
    const source = pngBytes(13 * MiB + 12_345);
    const blob = new Blob([source]);
    const stack = new FetchStack();
    const storage = new MemoryUrlStorage();
    const fileIds: string[] = [];

    // Session 1: the third PATCH breaks off after an odd number of bytes.
    const events1: { onSuccess?: () => void; onError?: (e: Error) => void } = {};
    const first = new Upload(
      blob,
      options(u.accessToken, stack, storage, events1, fileIds, {
        onChunkComplete: (_size: number, accepted: number) => {
          if (accepted >= 2 * (3 * MiB + 1) && accepted < 3 * (3 * MiB + 1)) stack.interruptPatch(1_234_567);
        },
      }),
    );
    await expect(run(first, events1)).rejects.toThrow(/network connection lost/);
    expect(stack.log).toEqual(["POST", "PATCH 0", `PATCH ${3 * MiB + 1}`, `PATCH ${2 * (3 * MiB + 1)}`]);
    expect(first.url).toMatch(/^https:\/\/outpost\.test\/v1\/uploads\/[0-9a-f-]{36}$/);
    const uploadPath = new URL(first.url!).pathname;

    // What the server kept: the two full chunks plus whatever of the broken one arrived.
    const head = await api(uploadPath, { method: "HEAD", token: u.accessToken, headers: { "tus-resumable": "1.0.0" } });
    expect(head.status).toBe(200);
    const kept = Number(head.headers.get("upload-offset"));
    expect(kept).toBeGreaterThanOrEqual(2 * (3 * MiB + 1));
    expect(kept).toBeLessThanOrEqual(2 * (3 * MiB + 1) + 1_234_567);
    console.log(`interrupted PATCH: server kept ${kept - 2 * (3 * MiB + 1)} of the 1,234,567 bytes sent`);
    expect(head.headers.get("upload-length")).toBe(String(source.length));
    expect(head.headers.get("outpost-file-id")).toBeNull();

    // Session 2: a fresh client finds the stored upload URL and resumes from the server's offset.
    const events2: { onSuccess?: () => void; onError?: (e: Error) => void } = {};
    const second = new Upload(blob, options(u.accessToken, stack, storage, events2, fileIds));
    const previous = await second.findPreviousUploads();
    expect(previous).toHaveLength(1);
    second.resumeFromPreviousUpload(previous[0]!);
    stack.log.length = 0;
    await run(second, events2);
    expect(stack.log[0]).toBe("HEAD");
    expect(stack.log[1]).toBe(`PATCH ${kept}`);

    expect(fileIds).toHaveLength(1);
    const fileId = fileIds[0]!;
    const meta = await api(`/v1/files/${fileId}`, { token: u.accessToken });
    expect(meta.body).toMatchObject({
      id: fileId,
      name: "clip.png",
      contentType: "image/png",
      size: source.length,
      visibility: "private",
      ownerId: u.id,
    });
    const content = await bytesOf(`/v1/files/${fileId}/content`, { token: u.accessToken });
    expect(content.status).toBe(200);
    expect(content.bytes.length).toBe(source.length);
    expect(content.bytes.every((b, i) => b === source[i])).toBe(true);

    const done = await api(uploadPath, { method: "HEAD", token: u.accessToken, headers: { "tus-resumable": "1.0.0" } });
    expect(done.headers.get("outpost-file-id")).toBe(fileId);
    expect(done.headers.get("upload-offset")).toBe(String(source.length));
  }, 120_000);

  it("uploads a small file in the creation request (creation-with-upload)", async () => {
    const u = await signup();
    const source = pngBytes(70_000);
    const stack = new FetchStack();
    const fileIds: string[] = [];
    const events: { onSuccess?: () => void; onError?: (e: Error) => void } = {};
    const upload = new Upload(
      new Blob([source]),
      options(u.accessToken, stack, new MemoryUrlStorage(), events, fileIds, {
        uploadDataDuringCreation: true,
        chunkSize: Infinity,
      }),
    );
    await run(upload, events);
    expect(stack.log).toEqual(["POST"]);
    expect(fileIds).toHaveLength(1);
    const content = await bytesOf(`/v1/files/${fileIds[0]}/content`, { token: u.accessToken });
    expect(content.bytes).toEqual(source);
  });
});

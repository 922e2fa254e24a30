/** Shared fixtures of the files tests: signature-correct media bytes and upload shortcuts. */
import { exports } from "cloudflare:workers";
import { type ApiResponse, api } from "../../helpers/api";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** `n` bytes that start with the PNG signature, then a deterministic pattern. */
export function pngBytes(n = 1000): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  b.set(PNG_SIGNATURE.slice(0, n));
  return b;
}

/** `n` bytes of a JPEG head (FF D8 FF E0) and filler. */
export function jpegBytes(n = 1000): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 17 + 3) & 0xff;
  b.set([0xff, 0xd8, 0xff, 0xe0]);
  return b;
}

export async function sha256Hex(data: Uint8Array | ArrayBuffer): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", data);
  return [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, "0")).join("");
}

export interface UploadOptions {
  type?: string;
  name?: string;
  visibility?: "public" | "private";
  headers?: Record<string, string>;
}

/** POST /v1/files with a raw body. */
export function uploadRaw(
  token: string | null,
  bytes: Uint8Array | string,
  o: UploadOptions = {},
): Promise<ApiResponse> {
  const q = new URLSearchParams();
  if (o.name !== undefined) q.set("name", o.name);
  if (o.visibility) q.set("visibility", o.visibility);
  const qs = q.toString();
  return api(`/v1/files${qs ? `?${qs}` : ""}`, {
    method: "POST",
    token,
    raw: bytes,
    headers: { "content-type": o.type ?? "image/png", ...o.headers },
  });
}

/** Uploads a PNG and returns the file JSON (throws unless 201). */
export async function uploadPng(token: string, o: UploadOptions & { size?: number } = {}) {
  const res = await uploadRaw(token, pngBytes(o.size ?? 1000), { name: "photo.png", ...o });
  if (res.status !== 201) throw new Error(`upload failed: ${res.status} ${res.text}`);
  return res.body as {
    id: string;
    name: string;
    contentType: string;
    size: number;
    visibility: string;
    ownerId: string;
    createdAt: string;
    url: string;
    sha256: string | null;
  };
}

/** Path + query of an absolute URL returned by the API. */
export const pathOf = (url: string) => {
  const u = new URL(url);
  return u.pathname + u.search;
};

/** Reads the bytes of a response from the Worker. */
export async function bytesOf(path: string, opts: { token?: string | null; headers?: Record<string, string> } = {}) {
  const headers = new Headers(opts.headers);
  if (opts.token) headers.set("authorization", `Bearer ${opts.token}`);
  const res = await exports.default.fetch(new Request(`https://outpost.test${path}`, { headers }));
  return { status: res.status, headers: res.headers, bytes: new Uint8Array(await res.arrayBuffer()) };
}

/** Shared steps of the collections tests: create records as a user and read the change feed. */
import { expect } from "vitest";
import { api, type TestUser } from "../../helpers/api";

export const base = (name: string) => `/v1/collections/${name}`;

/** Creates a note as `user` and returns the record. */
export async function createNote(user: TestUser, body: Record<string, unknown> = { title: "a note" }) {
  const res = await api(`${base("notes")}/records`, { token: user.accessToken, body });
  expect(res.status, res.text).toBe(201);
  return res.body as Record<string, unknown> & { id: string; version: number };
}

/** Creates a post as `user` and returns the record. */
export async function createPost(user: TestUser, text = "hello") {
  const res = await api(`${base("posts")}/records`, { token: user.accessToken, body: { text } });
  expect(res.status, res.text).toBe(201);
  return res.body as Record<string, unknown> & { id: string; version: number };
}

/** Lists with a JSON `where` and the given query parameters. */
export function list(name: string, token: string | null, params: Record<string, string | object> = {}) {
  const q = new URLSearchParams(
    Object.entries(params).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
  return api(`${base(name)}/records?${q}`, { token });
}

/** Blocks test helpers. */
import { api, type TestUser } from "../../helpers/api";

export interface BlockBody {
  userId: string;
  createdAt: string;
}

export const block = (by: TestUser, userId: string) =>
  api<BlockBody>("/v1/blocks", { token: by.accessToken, body: { userId } });
export const unblock = (by: TestUser, userId: string) =>
  api(`/v1/blocks/${encodeURIComponent(userId)}`, { method: "DELETE", token: by.accessToken });
export const listBlocks = (by: TestUser, query = "") =>
  api<{ items: BlockBody[]; nextCursor: string | null }>(`/v1/blocks${query}`, { token: by.accessToken });

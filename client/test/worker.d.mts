import type { JWK } from "jose";
export const JWT_SECRET: string;
export const SERVICE_KEY: string;
export const GOOGLE_AUDIENCE: string;
export function startWorker(o?: {
  build?: boolean;
  realLimits?: string[];
  vars?: Record<string, string>;
}): Promise<{ url: string; mailUrl: string; idTokenKey: JWK; dispose(): Promise<void> }>;

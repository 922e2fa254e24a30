import type { JWK } from "jose";
import type { TestProject } from "vitest/node";
import { GOOGLE_AUDIENCE, JWT_SECRET, startWorker } from "./worker.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    outpostUrl: string;
    /** The stand-in mail provider: `GET` lists the mails the Worker sent. */
    mailUrl: string;
    jwtSecret: string;
    idTokenKey: JWK;
    googleAudience: string;
  }
}

export default async function setup(project: TestProject) {
  const w = await startWorker();
  project.provide("outpostUrl", w.url);
  project.provide("mailUrl", w.mailUrl);
  project.provide("jwtSecret", JWT_SECRET);
  project.provide("idTokenKey", w.idTokenKey);
  project.provide("googleAudience", GOOGLE_AUDIENCE);
  return () => w.dispose();
}

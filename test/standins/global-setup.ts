/**
 * Starts the local stand-in server for outside services (OIDC key sets, mail provider, push
 * providers) on a loopback port for the whole run. Tests never reach the internet.
 */
import type { TestProject } from "vitest/node";
import { startStandins } from "./server";

export default async function setup(project: TestProject) {
  const server = await startStandins();
  project.provide("standinUrl", server.url);
  return () => server.close();
}

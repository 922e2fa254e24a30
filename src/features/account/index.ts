/** The caller's own account: `/v1/me` (profile, deletion of everything it owns). */
export { accountRoutes } from "./routes";
export { deleteAccount } from "./service";

/** Administration: the admin API (`/v1/admin`: users, audit log, push) and the console at `/admin`. */
export { createConsole } from "./console/app";
export { adminRoutes } from "./routes";

/** Every D1 table. drizzle-kit reads this folder to generate migrations (`npm run db:generate`). */

export * from "./admin";
export * from "./app-check";
export * from "./auth";
export * from "./blocks";
export * from "./chat";
export * from "./collections";
export * from "./files";
export * from "./logic";
export * from "./mfa";
export * from "./passkeys";
export * from "./push";
export * from "./release";
export * from "./teams";

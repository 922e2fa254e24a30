/** Every D1 table. drizzle-kit reads this folder to generate migrations (`npm run db:generate`). */
export * from "./auth";
export * from "./collections";
export * from "./chat";
export * from "./push";
export * from "./files";
export * from "./blocks";
export * from "./admin";

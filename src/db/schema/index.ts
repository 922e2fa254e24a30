/** Every D1 table. drizzle-kit reads this folder to generate migrations (`npm run db:generate`). */
export * from "./auth";

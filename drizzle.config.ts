import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  // The platform's tables, and the app's declared collections.
  schema: ["./src/db/schema", "./src/app/collections.ts"],
  out: "./migrations",
});

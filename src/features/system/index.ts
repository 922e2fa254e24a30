/** Health, the OpenAPI document and reference page, and the development outbox. */
export { devRoutes, healthRoutes, mountDocs } from "./routes";

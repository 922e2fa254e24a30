/**
 * The app's own logic: the before-hook runner writers call, how a write starts the events pipeline,
 * and the declared hooks. The app declares its logic with ./define (src/app imports it directly).
 */

export { callerOf, hasBefore, provideServices, runBefore, servicesFor } from "./before";
export { listenedSql, sendDrain } from "./kick";
export { afterHook } from "./registry";
export type {
  AppRecord,
  AppServices,
  EventJob,
  EventRecord,
  OutpostEvent,
  Run,
  RunOutcome,
  ServiceContext,
} from "./types";

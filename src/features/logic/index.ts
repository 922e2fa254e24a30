/**
 * The app's own logic: the before-hook runner writers call, how a write starts the events pipeline,
 * the declared hooks and schedules. The app declares its logic with ./define and ./schedule (src/app
 * imports them directly).
 */

export { callerOf, hasBefore, provideServices, runBefore, servicesFor } from "./before";
export { listenedSql, sendDrain } from "./kick";
export { afterHook } from "./registry";
export { HOUSEKEEPING_CRON, schedule } from "./schedule";
export { runSchedules } from "./scheduler";
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

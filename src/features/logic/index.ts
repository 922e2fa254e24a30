/** The app's own logic: what src/app/logic.ts declares hooks with, and the before-hook runner writers call. */

export { callerOf, hasBefore, provideServices, runBefore, servicesFor } from "./before";
export {
  type After,
  type Caller,
  fileHooks,
  type HookFile,
  type HookUser,
  hooks,
  type RecordOf,
  refuse,
  userHooks,
} from "./define";
export { createEventTriggersSql, dropEventTriggersSql, hookListenersSql } from "./events-ddl";
export { listenedSql, sendDrain } from "./kick";
export { afterHook, hookedEvents } from "./registry";
export { HOUSEKEEPING_CRON, schedule } from "./schedule";
export { runSchedules } from "./scheduler";
export type { AppRecord, AppServices, EventJob, OutpostEvent, Run, RunOutcome, ServiceContext } from "./types";

/**
 * The one door from the engine into the app's own code (`src/app/`): features read the app's
 * declarations from here, never from `src/app/` directly, so a newer Outpost never edits the app.
 */
import * as declaredCollections from "./app/collections";
import * as declaredLogic from "./app/logic";
import * as declaredMail from "./app/mail";
import * as declaredSchedules from "./app/schedules";

/** Every export of `src/app/collections.ts` (the collection() declarations among them). */
export const appCollections: Record<string, unknown> = declaredCollections;

/** Every export of `src/app/logic.ts` (hooks(), userHooks(), fileHooks() among them). */
export const appLogic: Record<string, unknown> = declaredLogic;

/** The remote config keys and their code defaults, as `src/app/config.ts` declares them. */
export { remoteConfig as appConfigDefaults } from "./app/config";
/** Every export of `src/app/mail.ts` (`mailTexts`: the mails in other languages). */
export const appMailTexts: Record<string, unknown> = declaredMail;

/** Every export of `src/app/schedules.ts` (the schedule() declarations among them). */
export const appSchedules: Record<string, unknown> = declaredSchedules;

/**
 * Every feature's lifecycle parts, in order (the order account deletion runs its hooks in).
 * Assembled once here; `router.ts` puts the result on `c.get("lifecycle")`, `scheduled.ts` runs the
 * cleanup tasks. Job handlers are assembled in `jobs.ts`. Also where the app's hooks get their
 * `app` services (the logic feature runs hooks without importing the features they call).
 */
import { adminParts } from "./features/admin";
import { appCheckParts } from "./features/app-check";
import { authParts } from "./features/auth";
import { blocksParts } from "./features/blocks";
import { chatParts } from "./features/chat";
import { collectionsParts } from "./features/collections";
import { appServices, eventsParts } from "./features/events";
import { filesParts } from "./features/files";
import { provideServices } from "./features/logic";
import { releaseParts } from "./features/release";
import { teamsParts } from "./features/teams";
import { assemble } from "./lifecycle";
import { idempotencyParts } from "./middleware/idempotency";

export const lifecycle = assemble([
  chatParts,
  collectionsParts,
  idempotencyParts,
  filesParts,
  eventsParts,
  blocksParts,
  teamsParts,
  releaseParts,
  authParts,
  adminParts,
  appCheckParts,
]);

provideServices(appServices);

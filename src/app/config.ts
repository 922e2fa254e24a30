/**
 * The app's remote config: each key with its code default. Admins change values and rules at run time
 * (`PUT /v1/admin/config/:key`, the console's Config page); `GET /v1/config` answers the value that applies
 * to the caller. The reserved keys `minVersion.ios|android` and `storeUrl.ios|android` drive forced updates.
 * See docs/release.md.
 */
import { defineConfig } from "../features/release/define";

export const remoteConfig = defineConfig({
  "feed.pageSize": 20,
  "chat.enabled": true,
  "onboarding.variant": "a",
});

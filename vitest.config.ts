import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { ensureDocsAssets } from "./scripts/docs-assets.mjs";
import pushTestSecrets from "./test/standins/keys/push-test-secrets.json" with { type: "json" };

// wrangler.toml's static-assets directory must hold the API reference's script before the pool starts.
ensureDocsAssets();

/** Test-only secrets, also in process.env: wrangler checks `[secrets] required` against it. */
const TEST_SECRETS = {
  JWT_SECRET: "test-jwt-secret-0123456789abcdef0123456789abcdef",
  SERVICE_KEY: "test-service-key-0123456789",
};
Object.assign(process.env, TEST_SECRETS);

/** Test-only secrets and the URLs of the local stand-ins (test/standins) for outside services. */
export default defineConfig({
  plugins: [
    cloudflareTest(async ({ inject }) => {
      const standin = inject<string>("standinUrl");
      return {
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            ENVIRONMENT: "test",
            ...TEST_SECRETS,
            PUBLIC_URL: "https://outpost.test",
            // Passkeys: the web origin and one Android app's signing-key origin (test/features/auth/passkeys*).
            PASSKEY_RP_ID: "outpost.test",
            PASSKEY_ORIGINS: "https://outpost.test,android:apk-key-hash:PASSKEYTESTPASSKEYTESTPASSKEYTESTPASSKEYTES",
            APPLE_JWKS_URL: `${standin}/oidc/apple/jwks`,
            APPLE_AUDIENCES: "com.example.outpost",
            GOOGLE_JWKS_URL: `${standin}/oidc/google/jwks`,
            GOOGLE_AUDIENCES: "1234-example.apps.googleusercontent.com,web-client-id",
            FCM_BASE_URL: `${standin}/fcm`,
            FCM_TOKEN_URL: `${standin}/fcm/token`,
            APNS_BASE_URL: `${standin}/apns`,
            EXPO_PUSH_URL: `${standin}/expo/push/send`,
            APPLE_APP_IDS: "ABCDE12345.com.example.outpost",
            ANDROID_APP_LINKS: `com.example.outpost=${"AB:".repeat(31)}CD`,
            // Push secrets: TEST-ONLY keys (test/standins/keys): FCM_SERVICE_ACCOUNT, APNS_KEY_P8/_KEY_ID/_TEAM_ID/_TOPIC, EXPO_ACCESS_TOKEN.
            ...pushTestSecrets,
            // OAuth / OpenID providers, GitHub and Apple's server endpoints: test/standins/oauth.ts.
            OAUTH_PROVIDERS: JSON.stringify({
              google: {
                issuer: `${standin}/oidc/issuer/google`,
                clientId: "google-web",
                clientSecret: "secret-for-google-web",
              },
              apple: { issuer: `${standin}/oidc/issuer/apple`, clientId: "com.example.outpost.web" },
              github: { clientId: "gh-client", clientSecret: "secret-for-gh-client" },
              corp: { issuer: `${standin}/oidc/issuer/corp`, clientId: "corp-client" },
            }),
            OAUTH_CLIENT_SECRETS: JSON.stringify({ corp: "secret-for-corp-client" }),
            OAUTH_REDIRECT_URIS: "https://app.example.com/cb,myapp://auth/callback",
            GITHUB_URL: `${standin}/github`,
            GITHUB_API_URL: `${standin}/github/api`,
            APPLE_TOKEN_URL: `${standin}/apple/auth/token`,
            APPLE_REVOKE_URL: `${standin}/apple/auth/revoke`,
            // Sign in with Apple's server key: the TEST-ONLY .p8 of the push stand-ins.
            APPLE_KEY_P8: pushTestSecrets.APNS_KEY_P8,
            APPLE_KEY_ID: "APPLEKEY01",
            APPLE_TEAM_ID: pushTestSecrets.APNS_TEAM_ID,
            STANDIN_URL: standin,
            TEST_MIGRATIONS: await readD1Migrations(path.join(import.meta.dirname, "migrations")),
          },
        },
      };
    }),
  ],
  test: {
    globalSetup: ["./test/standins/global-setup.ts"],
    setupFiles: ["./test/setup/apply-migrations.ts"],
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});

/**
 * TEST-ONLY push credentials (see README.md): `push-test-secrets.json` holds the Worker's push
 * secrets for the test run (vitest.config.ts spreads it into the bindings); the stand-ins verify
 * signatures with the `*-public.pem` halves. Node only.
 */
import { readFileSync } from "node:fs";
import secrets from "./push-test-secrets.json" with { type: "json" };

const read = (name: string) => readFileSync(decodeURIComponent(new URL(`./${name}`, import.meta.url).pathname), "utf8");
const serviceAccount = JSON.parse(secrets.FCM_SERVICE_ACCOUNT) as {
  project_id: string;
  client_email: string;
  private_key_id: string;
};

export const FCM_TEST_PROJECT = serviceAccount.project_id;
export const FCM_TEST_CLIENT_EMAIL = serviceAccount.client_email;
export const FCM_TEST_KEY_ID = serviceAccount.private_key_id;
export const APNS_TEST_KEY_ID = secrets.APNS_KEY_ID;
export const APNS_TEST_TEAM_ID = secrets.APNS_TEAM_ID;
export const APNS_TEST_TOPIC = secrets.APNS_TOPIC;
export const EXPO_TEST_ACCESS_TOKEN = secrets.EXPO_ACCESS_TOKEN;

export const fcmTestPublicKeyPem = () => read("fcm-test-public.pem");
export const apnsTestPublicKeyPem = () => read("apns-test-public.pem");

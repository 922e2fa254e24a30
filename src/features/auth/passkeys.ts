/**
 * Passkeys: creation and request options (single-use challenges, stored hashed), registering a credential,
 * signing in with one (discoverable: the credential names its user), listing, renaming and removing them.
 * The WebAuthn checks themselves are in `webauthn.ts`.
 */
import { and, asc, eq, lte, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { type Config, limits } from "../../config";
import type { Database } from "../../db";
import { passkeyChallenges, passkeys, users } from "../../db/schema";
import { AppError } from "../../errors";
import { b64url, hashToken, randomToken } from "../../lib/crypto";
import { newId, nowIso } from "../../lib/ids";
import type { DeletionHook, ScheduledTask } from "../../lifecycle";
import { rowWhileUserExists } from "./for-features";
import { openSession } from "./sessions";
import { accountDisabled, addSeconds, toUser } from "./users";
import {
  bytesOf,
  COSE_ALGS,
  checkAttestation,
  checkAuthenticatorData,
  checkClientData,
  checked,
  counterOk,
  importCoseKey,
  type RelyingParty,
  refuse,
  userHandleOf,
  verifySignature,
} from "./webauthn";

/** A passkey as the API shows it: no key material. */
export interface PasskeyInfo {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}

const info = { id: passkeys.id, name: passkeys.name, createdAt: passkeys.createdAt, lastUsedAt: passkeys.lastUsedAt };

function relyingParty(cfg: Config): RelyingParty & { name: string } {
  const { rpId, rpName, origins } = cfg.passkeys;
  if (!rpId || origins.length === 0) {
    console.error("configuration error: passkeys need PASSKEY_RP_ID (or PUBLIC_URL) and PASSKEY_ORIGINS");
    throw new AppError("misconfigured", "Passkeys are not configured on this server.");
  }
  return { id: rpId, name: rpName, origins };
}

/** A new challenge of `kind` (for `userId` when registering): stored as its hash, handed out once. */
async function newChallenge(db: Database, kind: "register" | "login", userId: string | null): Promise<string> {
  const challenge = randomToken(32);
  const row = {
    hash: await hashToken(challenge),
    kind,
    userId,
    expiresAt: addSeconds(nowIso(), limits.passkeyChallengeTtlSec),
  };
  if (userId) {
    const inserted = await db
      .insert(passkeyChallenges)
      .select(rowWhileUserExists(db, passkeyChallenges, userId, row) as never)
      .returning({ hash: passkeyChallenges.hash });
    if (inserted.length === 0) throw new AppError("unauthorized", "This account no longer exists.");
  } else {
    await db.insert(passkeyChallenges).values(row);
  }
  return challenge;
}

/** Redeems a challenge: one DELETE … RETURNING, so it works once; unknown, used, expired or not ours → refused. */
async function redeemChallenge(db: Database, challenge: string, kind: "register" | "login", userId: string | null) {
  const row = await db
    .delete(passkeyChallenges)
    .where(and(eq(passkeyChallenges.hash, await hashToken(challenge)), eq(passkeyChallenges.kind, kind)))
    .returning()
    .get();
  if (!row || row.expiresAt <= nowIso() || row.userId !== userId) refuse("unknown, used or expired challenge");
}

/** Creation options for `navigator.credentials.create({ publicKey })`, binary fields in base64url. */
export async function registrationOptions(db: Database, cfg: Config, userId: string) {
  const rp = relyingParty(cfg);
  const [user, existing] = await db.batch([
    db.select({ email: users.email, name: users.name }).from(users).where(eq(users.id, userId)),
    db
      .select({ credentialId: passkeys.credentialId, transports: passkeys.transports })
      .from(passkeys)
      .where(eq(passkeys.userId, userId)),
  ]);
  const u = user[0];
  if (!u) throw new AppError("unauthorized", "This account no longer exists.");
  if (existing.length >= limits.passkeysPerUser) {
    throw new AppError("conflict", `An account keeps at most ${limits.passkeysPerUser} passkeys; remove one first.`);
  }
  return {
    challenge: await newChallenge(db, "register", userId),
    rp: { id: rp.id, name: rp.name },
    user: { id: userHandleOf(userId), name: u.email ?? u.name ?? userId, displayName: u.name ?? u.email ?? "" },
    pubKeyCredParams: COSE_ALGS.map((alg) => ({ type: "public-key" as const, alg })),
    timeout: limits.passkeyChallengeTtlSec * 1000,
    attestation: "none" as const,
    authenticatorSelection: {
      residentKey: "required" as const,
      requireResidentKey: true,
      userVerification: "required" as const,
    },
    excludeCredentials: existing.map((p) => ({
      type: "public-key" as const,
      id: p.credentialId,
      ...(p.transports ? { transports: p.transports } : {}),
    })),
  };
}

export interface RegistrationInput {
  credential: {
    id: string;
    rawId: string;
    response: { clientDataJSON: string; attestationObject: string; transports?: string[] | undefined };
  };
  name?: string | undefined;
}

/** Checks a new credential against the caller's registration challenge and keeps it. */
export async function registerPasskey(
  db: Database,
  cfg: Config,
  userId: string,
  input: RegistrationInput,
): Promise<PasskeyInfo> {
  const rp = relyingParty(cfg);
  const { credential } = input;
  const made = await checked(async () => {
    const rawClient = bytesOf(credential.response.clientDataJSON, "clientDataJSON");
    const client = await checkClientData(rp, rawClient, "webauthn.create");
    await redeemChallenge(db, client.challenge, "register", userId);
    return checkAttestation(rp, bytesOf(credential.response.attestationObject, "attestationObject"), client.hash);
  });
  const credentialId = b64url(made.id);
  if (credential.id !== credentialId || credential.rawId !== credentialId) refuse("the credential id does not match");
  const now = nowIso();
  const row = {
    id: newId(),
    userId,
    credentialId,
    publicKey: b64url(made.publicKey),
    algorithm: made.alg,
    counter: made.counter,
    name: input.name ?? "Passkey",
    transports: credential.response.transports ?? null,
    createdAt: now,
    lastUsedAt: null,
  };
  const room = sql`(SELECT count(*) FROM ${passkeys} WHERE ${passkeys.userId} = ${userId}) < ${limits.passkeysPerUser}`;
  const inserted = await db
    .insert(passkeys)
    .select(rowWhileUserExists(db, passkeys, userId, row, room) as never)
    .onConflictDoNothing()
    .returning(info);
  const kept = inserted[0];
  if (kept) return kept;
  const taken = await db
    .select({ id: passkeys.id })
    .from(passkeys)
    .where(eq(passkeys.credentialId, credentialId))
    .get();
  if (taken) throw new AppError("conflict", "This passkey is already registered.");
  throw new AppError("conflict", `An account keeps at most ${limits.passkeysPerUser} passkeys; remove one first.`);
}

/** Request options for `navigator.credentials.get({ publicKey })`: discoverable credentials, any of ours. */
export async function signInOptions(db: Database, cfg: Config) {
  const rp = relyingParty(cfg);
  return {
    challenge: await newChallenge(db, "login", null),
    rpId: rp.id,
    timeout: limits.passkeyChallengeTtlSec * 1000,
    userVerification: "required" as const,
    allowCredentials: [] as never[],
  };
}

export interface AssertionInput {
  id: string;
  rawId: string;
  response: { clientDataJSON: string; authenticatorData: string; signature: string; userHandle?: string | null };
}

/**
 * Signs in with an assertion: the challenge (once), the passkey it names and whose user handle it carries,
 * rpIdHash and flags, the signature, the counter; then opens a session like every other sign-in.
 */
export async function signInWithPasskey(
  db: Database,
  cfg: Config,
  credential: AssertionInput,
  userAgent: string | null,
) {
  const rp = relyingParty(cfg);
  const checkedAssertion = await checked(async () => {
    const rawClient = bytesOf(credential.response.clientDataJSON, "clientDataJSON");
    const client = await checkClientData(rp, rawClient, "webauthn.get");
    await redeemChallenge(db, client.challenge, "login", null);
    if (credential.id !== credential.rawId) refuse("the credential id does not match");
    const found = await passkeyByCredentialQuery(db, credential.rawId).get();
    if (!found) return refuse("unknown passkey");
    if (credential.response.userHandle !== userHandleOf(found.user.id)) refuse("the user handle does not match");
    const auth = await checkAuthenticatorData(rp, bytesOf(credential.response.authenticatorData, "authenticatorData"));
    const key = await importCoseKey(bytesOf(found.passkey.publicKey, "stored key"));
    if (!(await verifySignature(key, auth.raw, client.hash, bytesOf(credential.response.signature, "signature")))) {
      refuse("bad signature");
    }
    return { ...found, counter: auth.counter };
  });
  const { passkey, user, counter } = checkedAssertion;
  if (!counterOk(passkey.counter, counter)) refuse("the signature counter went back (a cloned authenticator?)");
  if (user.disabled) throw accountDisabled();
  // Compare-and-set on the counter: of two sign-ins with the same counter value, one wins.
  const moved = await db
    .update(passkeys)
    .set({ counter, lastUsedAt: nowIso() })
    .where(and(eq(passkeys.id, passkey.id), eq(passkeys.counter, passkey.counter)))
    .returning({ id: passkeys.id });
  if (moved.length === 0) refuse("the passkey was used at the same time");
  // A passkey proves possession and user verification at once: the session is aal2, no second step.
  const s = await openSession(db, cfg, user, userAgent, { aal: "aal2" });
  await db.batch(s.statements);
  return { user: toUser(user), session: s.tokens };
}

/** The passkey an assertion names, with its user. */
export const passkeyByCredentialQuery = (db: Database, credentialId: string) =>
  db
    .select({ passkey: passkeys, user: users })
    .from(passkeys)
    .innerJoin(users, eq(users.id, passkeys.userId))
    .where(eq(passkeys.credentialId, credentialId));

/** A user's passkeys, oldest first (at most `limits.passkeysPerUser`). */
export const listPasskeysQuery = (db: Database, userId: string) =>
  db.select(info).from(passkeys).where(eq(passkeys.userId, userId)).orderBy(asc(passkeys.createdAt));

export async function listPasskeys(db: Database, userId: string): Promise<PasskeyInfo[]> {
  return listPasskeysQuery(db, userId);
}

/** Renames one of a user's passkeys; null when they have no such passkey. */
export async function renamePasskey(db: Database, userId: string, id: string, name: string) {
  const rows = await db
    .update(passkeys)
    .set({ name })
    .where(and(eq(passkeys.id, id), eq(passkeys.userId, userId)))
    .returning(info);
  return rows[0] ?? null;
}

/** The statement that removes one of a user's passkeys (returns its id when there was one). */
export function removePasskeyStatement(db: Database, userId: string, id: string) {
  return db
    .delete(passkeys)
    .where(and(eq(passkeys.id, id), eq(passkeys.userId, userId)))
    .returning({ id: passkeys.id });
}

/** Account deletion: the user's passkeys and challenges, in the deletion's batch. */
export const passkeysDeletionHook: DeletionHook = async ({ db, userId }) => ({
  statements: [
    db.delete(passkeys).where(eq(passkeys.userId, userId)),
    db.delete(passkeyChallenges).where(eq(passkeyChallenges.userId, userId)),
  ] as BatchItem<"sqlite">[],
});

/** Cron: challenges past their expiry that were never used. */
export const passkeyCleanup: ScheduledTask = async (_env, db, now) => {
  await db.delete(passkeyChallenges).where(lte(passkeyChallenges.expiresAt, now.toISOString()));
};

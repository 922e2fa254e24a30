/**
 * Identities and linking: every sign-in that is not a password (Apple/Google ID tokens, OAuth/OpenID
 * providers, email codes) goes through `signInWithIdentity`; and a guest becoming a full account.
 */
import { and, eq } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Config } from "../../config";
import { type Database, runBatch } from "../../db";
import { identities, users, verificationTokens } from "../../db/schema";
import { AppError, isConstraintError } from "../../errors";
import { hashPassword } from "../../lib/crypto";
import { nowIso } from "../../lib/ids";
import { keepAppleTokenStatement } from "./apple";
import { EMAIL_PROVIDER, type VerifiedIdentity } from "./idtoken";
import type { MfaRequiredAnswer } from "./mfa";
import { type NewAccounts, newUserInsert } from "./new-accounts";
import type { User } from "./schemas";
import { openSignIn } from "./sessions";
import type { SessionTokens } from "./tokens";
import { accountDisabled, getUser, getUserByEmail, newUserRow, toUser } from "./users";

/** Turns the calling guest into a full account, keeping its id (and so everything it owns). */
export async function linkGuest(db: Database, userId: string, input: { email: string; password: string }) {
  const user = await getUser(db, userId);
  if (!user) throw new AppError("unauthorized", "This account no longer exists.");
  if (!user.anonymous) throw new AppError("conflict", "This account already has an email and password.");
  if (await getUserByEmail(db, input.email))
    throw new AppError("email_taken", "An account with this email already exists.");
  const passwordHash = await hashPassword(input.password);
  try {
    const updated = await db
      .update(users)
      .set({ email: input.email, passwordHash, anonymous: false, updatedAt: nowIso() })
      .where(and(eq(users.id, userId), eq(users.anonymous, true)))
      .returning()
      .get();
    if (!updated) throw new AppError("conflict", "This account already has an email and password.");
    return toUser(updated);
  } catch (e) {
    if (isConstraintError(e, "UNIQUE")) throw new AppError("email_taken", "An account with this email already exists.");
    throw e;
  }
}

/**
 * Finds or creates the user behind a verified identity (a provider's user, or the holder of a mailbox that
 * proved it with an emailed code). Only an email the provider has verified counts for anything; one that
 * isn't is neither matched nor stored.
 *
 * A new identity whose verified email belongs to an account that has verified it too is linked
 * to that account. If that account never verified the email, nothing proves its holder owns the
 * address (an attacker may have signed up with the victim's email, or linked a guest to it,
 * before the victim ever came): that account keeps its id and data but loses the email, and the
 * provider's user gets a new account, in one batch. Every credential the old account held
 * (password, refresh tokens, access tokens, which name its id and are checked without a lookup)
 * still reaches only the old id, never what the provider's user owns.
 */
export async function signInWithIdentity(
  db: Database,
  cfg: Config,
  id: VerifiedIdentity,
  userAgent: string | null,
  accounts?: NewAccounts,
): Promise<{ user: User; session: SessionTokens; created: boolean } | MfaRequiredAnswer> {
  try {
    return await identitySignIn(db, cfg, id, userAgent, accounts);
  } catch (e) {
    // A concurrent sign-in created this identity or took the email, or the email's account verified
    // it meanwhile (the guarded UPDATE then changed nothing and the INSERT hit the unique email):
    // the batch rolled back as a whole, and a second look sees the new state.
    if (!isConstraintError(e, "UNIQUE")) throw e;
  }
  try {
    return await identitySignIn(db, cfg, id, userAgent, accounts);
  } catch (e) {
    if (isConstraintError(e, "UNIQUE"))
      throw new AppError("conflict", "This account changed while signing in; try again.");
    throw e;
  }
}

async function identitySignIn(
  db: Database,
  cfg: Config,
  id: VerifiedIdentity,
  userAgent: string | null,
  accounts?: NewAccounts,
) {
  const now = nowIso();
  // An email code names no provider account: the address is matched through `users.email` alone (an
  // identity row for an address could outlive its holder's change of email).
  const byMail = id.provider === EMAIL_PROVIDER;
  const linked = byMail
    ? undefined
    : await db
        .select({ user: users })
        .from(identities)
        .innerJoin(users, eq(users.id, identities.userId))
        .where(and(eq(identities.provider, id.provider), eq(identities.subject, id.subject)))
        .get();
  let user = linked?.user;
  const writes: BatchItem<"sqlite">[] = [];
  /** The index of a new account's INSERT in `writes`, if one is made. */
  let created = -1;
  if (!user) {
    const email = id.email && id.emailVerified ? id.email : null;
    const holder = email ? await getUserByEmail(db, email) : undefined;
    if (holder?.emailVerified) {
      user = holder;
    } else {
      if (holder && email) {
        // Guarded: if the holder verified the email meanwhile, this changes nothing and the INSERT
        // below fails on the unique email, rolling the batch back (the caller looks again).
        writes.push(
          db
            .update(users)
            .set({ email: null, emailVerified: false, updatedAt: now })
            .where(and(eq(users.id, holder.id), eq(users.email, email), eq(users.emailVerified, false))),
          // Its pending reset and verification codes were for the address it no longer has.
          db.delete(verificationTokens).where(eq(verificationTokens.userId, holder.id)),
        );
      }
      await accounts?.before({ email, name: id.name ?? null, anonymous: false });
      user = newUserRow({ email, emailVerified: email !== null, name: id.name, locale: id.locale ?? null }, now);
      created = writes.push(newUserInsert(db, user)) - 1;
    }
    const row = {
      provider: id.provider,
      subject: byMail ? user.id : id.subject,
      userId: user.id,
      email,
      createdAt: now,
    };
    // A provider identity made concurrently must fail this batch (the retry finds it); an email code only
    // records that the account signs in that way.
    const insert = db.insert(identities).values(row);
    writes.push(byMail ? insert.onConflictDoNothing() : insert);
  }
  if (user.disabled) throw accountDisabled();
  if (id.appleRefresh) writes.push(keepAppleTokenStatement(db, user.id, id.appleRefresh));
  // An account made here has no second factor yet; an existing one may (then: no session, an mfaToken).
  const s = await openSignIn(db, cfg, user, userAgent, created >= 0 ? false : undefined);
  const results = await runBatch(db, [...writes, ...s.statements]);
  if (created >= 0) accounts?.created(results[created]);
  return "mfaRequired" in s.answer ? s.answer : { ...s.answer, created: created >= 0 };
}

/**
 * The texts of the mails Outpost sends, in one place (route handlers only pick one and send it), in the
 * recipient's language: English here, other languages from the app's `src/app/mail.ts` (through the registry).
 */
import type { Config } from "../../config";
import { limits } from "../../config";
import { appMailTexts } from "../../registry";
import type { MailTexts } from "./define";
import type { Mail } from "./mailer";

const en: MailTexts = {
  passwordReset: ({ app, token, link, minutes, byAdmin }) => {
    const [why, ignore] = byAdmin
      ? [`An administrator of ${app} sent you a code to reset your password.`, "If you did not expect this"]
      : [`Someone asked to reset the password of your ${app} account.`, "If this was not you"];
    return {
      subject: `${app}: reset your password`,
      text:
        `${why}\n\nYour reset code: ${token}\nOr open: ${link}\n\n` +
        `The code expires in ${minutes} minutes. ${ignore}, ignore this mail.`,
    };
  },
  verifyEmail: ({ app, token, link, hours }) => ({
    subject: `${app}: confirm your email`,
    text: `Your verification code: ${token}\nOr open: ${link}\n\nThe code expires in ${hours} hours.`,
  }),
  teamInvitation: ({ app, team, token, link, days }) => ({
    subject: `${app}: you are invited to join ${team}`,
    text:
      `You are invited to join the team "${team}" on ${app}.\n\nYour invitation code: ${token}\n` +
      `Or open: ${link}\n\nSign in with this email address (verified) to accept. ` +
      `The invitation expires in ${days} days and works once.`,
  }),
  signInCode: ({ app, code, link, minutes }) => ({
    subject: `${app}: your sign-in code`,
    text:
      `Your sign-in code: ${code}\nOr open: ${link}\n\nThe code expires in ${minutes} minutes and works once. ` +
      "If you did not ask to sign in, ignore this mail.",
  }),
  mfaReset: ({ app }) => ({
    subject: `${app}: your second factor was reset`,
    text:
      `An administrator of ${app} removed the second factor (authenticator app and recovery codes) of your ` +
      "account, as you asked support to. You now sign in without it; set it up again in the app.\n\nIf you " +
      `did not ask for this, contact ${app}'s support at once.`,
  }),
};

/** The template `name` in `locale` (`fr-CA`, then `fr`), else English. */
function pick<K extends keyof MailTexts>(name: K, locale: string | null | undefined): MailTexts[K] {
  if (locale) {
    const declared = (appMailTexts.mailTexts ?? {}) as Record<string, Partial<MailTexts> | undefined>;
    const tag = locale.toLowerCase();
    for (const key of [tag, tag.split("-")[0]!]) {
      const found = Object.entries(declared).find(([k]) => k.toLowerCase() === key)?.[1]?.[name];
      if (found) return found;
    }
  }
  return en[name];
}

/**
 * A password-reset code, with a link to `linkBase/reset-password`: asked for by the account's holder,
 * or sent by an administrator from the console.
 */
export function passwordResetMail(
  cfg: Config,
  to: string,
  token: string,
  linkBase: string,
  sentBy: "holder" | "admin" = "holder",
  locale?: string | null,
): Mail {
  const link = `${linkBase}/reset-password?token=${token}`;
  const minutes = limits.passwordResetTtlSec / 60;
  return {
    to,
    ...pick("passwordReset", locale)({ app: cfg.appName, token, link, minutes, byAdmin: sentBy === "admin" }),
  };
}

/** An email-verification code, with a link to `linkBase/verify-email`. */
export function verifyEmailMail(
  cfg: Config,
  to: string,
  token: string,
  linkBase: string,
  locale?: string | null,
): Mail {
  const link = `${linkBase}/verify-email?token=${token}`;
  return {
    to,
    ...pick("verifyEmail", locale)({ app: cfg.appName, token, link, hours: limits.emailVerifyTtlSec / 3600 }),
  };
}

/** An invitation to join a team, with a link to `linkBase/teams/join`. */
export function teamInvitationMail(
  cfg: Config,
  to: string,
  teamName: string,
  token: string,
  linkBase: string,
  locale?: string | null,
): Mail {
  const link = `${linkBase}/teams/join?token=${token}`;
  const days = limits.teamInvitationTtlSec / 86400;
  return { to, ...pick("teamInvitation", locale)({ app: cfg.appName, team: teamName, token, link, days }) };
}

/** A sign-in code and magic link (`linkBase/auth/otp?token=`). */
export function signInCodeMail(
  cfg: Config,
  to: string,
  code: string,
  token: string,
  linkBase: string,
  locale?: string | null,
): Mail {
  const link = `${linkBase}/auth/otp?token=${token}`;
  return { to, ...pick("signInCode", locale)({ app: cfg.appName, code, link, minutes: limits.otpTtlSec / 60 }) };
}

/** Tells a user that an administrator removed their second factor (the console's "Reset MFA"). */
export function mfaResetMail(cfg: Config, to: string, locale?: string | null): Mail {
  return { to, ...pick("mfaReset", locale)({ app: cfg.appName }) };
}

/** Tells an admin that a webhook was disabled after its deliveries failed for a day. */
export function webhookDisabledMail(cfg: Config, to: string, url: string, failingSince: string | null): Mail {
  return {
    to,
    subject: `${cfg.appName}: a webhook was disabled`,
    text:
      `Every delivery to the webhook ${url} has failed since ${failingSince ?? "a day ago"}, so ${cfg.appName} ` +
      "disabled it: no more events are sent to it, and its waiting deliveries were stopped.\n\nFix the " +
      "receiver, then enable the webhook again in the admin console (Webhooks) or with PATCH " +
      '/v1/admin/webhooks/<id> { "enabled": true }; stopped deliveries can be sent again from there.',
  };
}

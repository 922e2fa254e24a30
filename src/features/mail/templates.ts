/** The texts of the mails Outpost sends, in one place (route handlers only pick one and send it). */
import type { Config } from "../../config";
import { limits } from "../../config";
import type { Mail } from "./mailer";

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
): Mail {
  const [why, ignore] =
    sentBy === "admin"
      ? [`An administrator of ${cfg.appName} sent you a code to reset your password.`, "If you did not expect this"]
      : [`Someone asked to reset the password of your ${cfg.appName} account.`, "If this was not you"];
  return {
    to,
    subject: `${cfg.appName}: reset your password`,
    text:
      `${why}\n\nYour reset code: ${token}\nOr open: ${linkBase}/reset-password?token=${token}\n\n` +
      `The code expires in ${limits.passwordResetTtlSec / 60} minutes. ${ignore}, ignore this mail.`,
  };
}

/** An email-verification code, with a link to `linkBase/verify-email`. */
export function verifyEmailMail(cfg: Config, to: string, token: string, linkBase: string): Mail {
  return {
    to,
    subject: `${cfg.appName}: confirm your email`,
    text:
      `Your verification code: ${token}\nOr open: ${linkBase}/verify-email?token=${token}\n\nThe code expires in ` +
      `${limits.emailVerifyTtlSec / 3600} hours.`,
  };
}

/** An invitation to join a team, with a link to `linkBase/teams/join`. */
export function teamInvitationMail(cfg: Config, to: string, teamName: string, token: string, linkBase: string): Mail {
  return {
    to,
    subject: `${cfg.appName}: you are invited to join ${teamName}`,
    text:
      `You are invited to join the team "${teamName}" on ${cfg.appName}.\n\nYour invitation code: ${token}\n` +
      `Or open: ${linkBase}/teams/join?token=${token}\n\nSign in with this email address (verified) to accept. ` +
      `The invitation expires in ${limits.teamInvitationTtlSec / 86400} days and works once.`,
  };
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

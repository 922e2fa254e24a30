/** Sending mail (one interface: an HTTP provider, or the development outbox) and the mails' texts. */
export { mailLinkBase } from "./links";
export { createMailer, devOutboxEnabled, listOutbox } from "./mailer";
export {
  mfaResetMail,
  passwordResetMail,
  signInCodeMail,
  teamInvitationMail,
  verifyEmailMail,
  webhookDisabledMail,
} from "./templates";

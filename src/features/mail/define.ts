/**
 * What the app's `src/app/mail.ts` declares its mail texts with (a declaration module, like the collections' and
 * the logic's: the app's folder imports it, and it imports nothing of the engine).
 */

type Text = { subject: string; text: string };

/** Every mail's text in one language; an app's language may leave some out (English stands in). */
export interface MailTexts {
  passwordReset(p: { app: string; token: string; link: string; minutes: number; byAdmin: boolean }): Text;
  verifyEmail(p: { app: string; token: string; link: string; hours: number }): Text;
  teamInvitation(p: { app: string; team: string; token: string; link: string; days: number }): Text;
  signInCode(p: { app: string; code: string; link: string; minutes: number }): Text;
  mfaReset(p: { app: string }): Text;
}

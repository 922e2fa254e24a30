/**
 * The app's mail texts in other languages than English, keyed by language tag (`fr`, or `pt-BR` for one
 * region): a user whose `locale` matches gets these. A language may leave mails out (English stands in).
 */
import type { MailTexts } from "../features/mail/define";

export const mailTexts: Record<string, Partial<MailTexts>> = {
  fr: {
    passwordReset: ({ app, token, link, minutes, byAdmin }) => ({
      subject: `${app} : réinitialisez votre mot de passe`,
      text:
        (byAdmin
          ? `Un administrateur de ${app} vous envoie un code pour réinitialiser votre mot de passe.`
          : `Quelqu'un a demandé à réinitialiser le mot de passe de votre compte ${app}.`) +
        `\n\nVotre code de réinitialisation : ${token}\nOu ouvrez : ${link}\n\n` +
        `Le code expire dans ${minutes} minutes. Si ce n'était pas vous, ignorez ce message.`,
    }),
    verifyEmail: ({ app, token, link, hours }) => ({
      subject: `${app} : confirmez votre adresse e-mail`,
      text: `Votre code de vérification : ${token}\nOu ouvrez : ${link}\n\nLe code expire dans ${hours} heures.`,
    }),
    teamInvitation: ({ app, team, token, link, days }) => ({
      subject: `${app} : vous êtes invité à rejoindre ${team}`,
      text:
        `Vous êtes invité à rejoindre l'équipe « ${team} » sur ${app}.\n\nVotre code d'invitation : ${token}\n` +
        `Ou ouvrez : ${link}\n\nConnectez-vous avec cette adresse (vérifiée) pour accepter. ` +
        `L'invitation expire dans ${days} jours et ne sert qu'une fois.`,
    }),
    signInCode: ({ app, code, link, minutes }) => ({
      subject: `${app} : votre code de connexion`,
      text:
        `Votre code de connexion : ${code}\nOu ouvrez : ${link}\n\nLe code expire dans ${minutes} minutes et ne ` +
        "sert qu'une fois. Si vous n'avez pas demandé à vous connecter, ignorez ce message.",
    }),
    mfaReset: ({ app }) => ({
      subject: `${app} : votre second facteur a été réinitialisé`,
      text:
        `Un administrateur de ${app} a supprimé le second facteur (application d'authentification et codes de ` +
        "secours) de votre compte, comme vous l'avez demandé au support. Vous vous connectez désormais sans ; " +
        "réactivez-le dans l'application.\n\nSi vous n'avez rien demandé, contactez tout de suite le " +
        `support de ${app}.`,
    }),
  },
};

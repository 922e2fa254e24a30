/**
 * The app's own logic: hooks per collection, for accounts and for files. Before hooks run inside
 * the request, before the write, for every writer; they may change the data or `refuse()`. After
 * hooks run after the commit, off the request path, once per change (the Queue retries a failure,
 * then the run is parked in the console). After adding or removing an after hook, run
 * `npm run db:generate` (the triggers write events only for what someone listens to). See docs/logic.md.
 */
import { fileHooks, hooks, refuse, userHooks } from "../features/logic/define";
import { comments, posts } from "./collections";

const SPAM = "http://spam.example";

export const postHooks = hooks(posts, {
  before: {
    create: ({ data }) => {
      if (data.text?.includes(SPAM)) refuse(422, "content_refused", "Posts may not link to spam.");
    },
    update: ({ data }) => {
      if (data.text?.includes(SPAM)) refuse(422, "content_refused", "Posts may not link to spam.");
    },
  },
});

export const commentHooks = hooks(comments, {
  before: {
    // A comment's text is stored trimmed (a hook may change the data it is given).
    create: ({ data }) => ({ ...data, text: data.text?.trim() }),
  },
  after: {
    // Tell the post's author about a new comment by someone else (a push to each of their devices).
    create: async ({ record, app }) => {
      if (!record?.postId) return;
      const post = await app.records("posts").get(record.postId);
      const author = post?.ownerId as string | null | undefined;
      if (!author || author === record.ownerId) return;
      await app.push([author], { title: "New comment", body: record.text.slice(0, 120), data: { postId: post!.id } });
    },
  },
});

/** Sign-ups from throwaway mail domains are refused (every way of signing up: password, provider, email code). */
const DISPOSABLE = ["disposable.test", "mailinator.com", "10minutemail.com"];

export const accountHooks = userHooks({
  before: {
    create: ({ data }) => {
      const domain = data.email?.split("@")[1]?.toLowerCase();
      if (domain && DISPOSABLE.includes(domain))
        refuse(422, "email_refused", "Sign up with a mail address you keep; throwaway domains are refused.");
    },
  },
  after: {
    // A welcome mail once per new account with an email (guests have none).
    create: async ({ record, app }) => {
      if (!record?.email) return;
      await app.mail({
        to: record.email,
        subject: `Welcome to ${app.env.APP_NAME}`,
        text: `Hello${record.name ? ` ${record.name}` : ""},\n\nyour ${app.env.APP_NAME} account is ready.`,
      });
    },
  },
});

// Installers are not shared through this app, whatever their bytes look like: refused before any byte is stored.
export const uploadHooks = fileHooks({
  before: {
    create: ({ data }) => {
      if (/\.(exe|msi|dmg|pkg|apk|ipa)$/i.test(data.name))
        refuse(422, "file_refused", "Installers cannot be uploaded.");
    },
  },
});

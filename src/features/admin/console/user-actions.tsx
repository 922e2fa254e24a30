/** What an admin does to a user: the Actions card of the user's page and the routes its forms post to. */
import { Hono } from "hono";
import type { FC } from "hono/jsx";
import { AppError } from "../../../errors";
import { endSessionSockets } from "../../../lifecycle";
import type { SignInMethod } from "../../auth";
import { mailLinkBase } from "../../mail";
import type { AdminUserDetail } from "../schemas";
import {
  endUserSessions,
  removeUser,
  removeUserSignInMethod,
  resetUserMfa,
  sendResetMail,
  updateUser,
  userDetail,
} from "../service";
import type { ConsoleEnv } from "./context";
import { actor, form, idParam, redirect, unconfirmed } from "./page";
import { type Column, DataTable } from "./table";
import { ActionForm, fmtDate, P } from "./ui";

const CANNOT_UNDO = "This cannot be undone.";

export const UserActions: FC<{ u: AdminUserDetail; who: string; csrf: string; self: boolean }> = ({
  u,
  who,
  csrf,
  self,
}) => {
  const base = `${P}/users/${u.id}`;
  return (
    <section class="card">
      <h2>Actions</h2>
      {self ? <p class="muted">This is you: you cannot disable, demote or delete yourself here.</p> : null}
      <div class="actions wrap">
        {u.disabled ? (
          <ActionForm action={`${base}/enable`} csrf={csrf}>
            <button type="submit" class="btn">
              Enable
            </button>
          </ActionForm>
        ) : self ? null : (
          <ActionForm
            action={`${base}/disable`}
            csrf={csrf}
            confirm={`Disable ${who}? They are signed out everywhere and cannot sign in until enabled.`}
          >
            <button type="submit" class="btn warn">
              Disable
            </button>
          </ActionForm>
        )}
        <ActionForm
          action={`${base}/end-sessions`}
          csrf={csrf}
          confirm={`End every session of ${who}? Their apps must sign in again.`}
        >
          <button type="submit" class="btn">
            End sessions
          </button>
        </ActionForm>
        {u.email ? (
          <ActionForm action={`${base}/reset-mail`} csrf={csrf}>
            <button type="submit" class="btn">
              Send password reset
            </button>
          </ActionForm>
        ) : null}
        {u.role === "admin" ? (
          self ? null : (
            <ActionForm action={`${base}/demote`} csrf={csrf} confirm={`Take the admin role from ${who}?`}>
              <button type="submit" class="btn">
                Remove admin role
              </button>
            </ActionForm>
          )
        ) : (
          <ActionForm
            action={`${base}/promote`}
            csrf={csrf}
            confirm={`Make ${who} an admin? Admins can do everything this console does.`}
          >
            <button type="submit" class="btn">
              Make admin
            </button>
          </ActionForm>
        )}
        <a class="btn ghost" href={`${base}/devices`}>
          Devices
        </a>
        {self ? null : (
          <ActionForm
            action={`${base}/delete`}
            csrf={csrf}
            confirm={`Delete ${who} and everything they own (records, files, devices, memberships)? ${CANNOT_UNDO}`}
          >
            <button type="submit" class="btn danger">
              Delete user
            </button>
          </ActionForm>
        )}
      </div>
    </section>
  );
};

const KIND_LABELS: Record<string, string> = {
  password: "Password",
  apple: "Apple",
  google: "Google",
  github: "GitHub",
  email: "Email code",
};
const kindLabel = (kind: string) => KIND_LABELS[kind] ?? `OpenID (${kind})`;

/** The Sign-in methods card: the password and each linked identity; any but the last can be removed. */
export const SignInMethods: FC<{ userId: string; who: string; methods: SignInMethod[]; csrf: string }> = (p) => {
  const columns: Column<SignInMethod>[] = [
    { header: "Method", cell: (m) => kindLabel(m.kind) },
    { header: "Provider's email", cell: (m) => m.email ?? <span class="muted">—</span> },
    { header: "Added", cell: (m) => fmtDate(m.createdAt) },
    {
      header: "",
      cell: (m) =>
        // Email codes go by the account's verified email: there is nothing to remove but the address.
        m.kind === "email" ? (
          <span class="muted small">while the email is verified</span>
        ) : p.methods.length > 1 ? (
          <ActionForm
            action={`${P}/users/${p.userId}/sign-in-methods/remove`}
            csrf={p.csrf}
            fields={{ kind: m.kind, subject: m.subject }}
            confirm={`Remove ${kindLabel(m.kind)} from ${p.who}? They can no longer sign in with it.`}
          >
            <button type="submit" class="btn warn">
              Remove
            </button>
          </ActionForm>
        ) : (
          <span class="muted small">the only one</span>
        ),
    },
  ];
  return (
    <section class="card">
      <h2>Sign-in methods</h2>
      <DataTable rows={p.methods} columns={columns} empty="None: this account cannot sign in (a guest)." />
    </section>
  );
};

export type FactorSummary = { totp: "none" | "pending" | "confirmed"; recoveryCodesLeft: number };

const TOTP_LABELS = { none: "Not set up", pending: "Enrollment started, not confirmed", confirmed: "On" } as const;

/** The Second factor card: TOTP's state, the recovery codes left, and support's "Reset MFA". */
export const SecondFactor: FC<{ userId: string; who: string; mfa: FactorSummary; csrf: string }> = (p) => (
  <section class="card">
    <h2>Second factor</h2>
    <dl class="facts">
      <dt>Authenticator app (TOTP)</dt>
      <dd>{TOTP_LABELS[p.mfa.totp]}</dd>
      <dt>Recovery codes left</dt>
      <dd>{p.mfa.recoveryCodesLeft}</dd>
    </dl>
    {p.mfa.totp === "none" && p.mfa.recoveryCodesLeft === 0 ? null : (
      <ActionForm
        action={`${P}/users/${p.userId}/mfa-reset`}
        csrf={p.csrf}
        confirm={
          `Reset the second factor of ${p.who}? They sign in with their first factor alone until they set it ` +
          "up again. Do this only once you are sure who asks."
        }
      >
        <button type="submit" class="btn warn">
          Reset MFA
        </button>
      </ActionForm>
    )}
  </section>
);

const userBack = (id: string) => `${P}/users/${id}`;

/** Mounted at `/admin/users`. */
export const userActions = new Hono<ConsoleEnv>();

userActions.post("/:id/disable", async (c) => {
  const id = idParam(c);
  const ask = await unconfirmed(
    c,
    "Disable this user? They are signed out everywhere and cannot sign in until enabled.",
    userBack(id),
  );
  if (ask) return ask;
  await updateUser(c.get("db"), actor(c), id, { disabled: true });
  c.executionCtx.waitUntil(endSessionSockets(c.get("lifecycle"), c.env, id, "all"));
  return redirect(c, userBack(id), "disabled");
});

userActions.post("/:id/enable", async (c) => {
  const id = idParam(c);
  await updateUser(c.get("db"), actor(c), id, { disabled: false });
  return redirect(c, userBack(id), "enabled");
});

/** Promote and demote: the same confirmed role change, to another role. */
const roleChanges = [
  { path: "promote", role: "admin", question: "Make this user an admin?", done: "promoted" },
  { path: "demote", role: "user", question: "Take the admin role from this user?", done: "demoted" },
] as const;
for (const { path, role, question, done } of roleChanges) {
  userActions.post(`/:id/${path}`, async (c) => {
    const id = idParam(c);
    const ask = await unconfirmed(c, question, userBack(id));
    if (ask) return ask;
    await updateUser(c.get("db"), actor(c), id, { role });
    return redirect(c, userBack(id), done);
  });
}

userActions.post("/:id/end-sessions", async (c) => {
  const id = idParam(c);
  const ask = await unconfirmed(c, "End every session of this user? Their apps must sign in again.", userBack(id));
  if (ask) return ask;
  if (!(await userDetail(c.get("db"), id))) throw new AppError("not_found", "No such user.");
  await endUserSessions(c.get("db"), actor(c), id);
  c.executionCtx.waitUntil(endSessionSockets(c.get("lifecycle"), c.env, id, "all"));
  return redirect(c, userBack(id), "sessions");
});

userActions.post("/:id/sign-in-methods/remove", async (c) => {
  const id = idParam(c);
  const ask = await unconfirmed(c, "Remove this sign-in method? The user can no longer sign in with it.", userBack(id));
  if (ask) return ask;
  const f = await form(c);
  const kind = f.kind ?? "";
  if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(kind) || kind === "email" || (f.subject ?? "").length > 512) {
    throw new AppError("validation_failed", "No such sign-in method.");
  }
  await removeUserSignInMethod(c.get("db"), actor(c), id, kind, f.subject ?? "");
  return redirect(c, userBack(id), "method-removed");
});

userActions.post("/:id/mfa-reset", async (c) => {
  const id = idParam(c);
  const ask = await unconfirmed(
    c,
    "Reset this user's second factor? They sign in with their first factor alone until they set it up again.",
    userBack(id),
  );
  if (ask) return ask;
  await resetUserMfa(c.get("config"), c.get("db"), actor(c), id);
  return redirect(c, userBack(id), "mfa-reset");
});

userActions.post("/:id/reset-mail", async (c) => {
  const id = idParam(c);
  const base = mailLinkBase(c.get("config"), c.env, c.req.url);
  await sendResetMail(c.get("config"), c.get("db"), actor(c), id, base);
  return redirect(c, userBack(id), "reset");
});

userActions.post("/:id/delete", async (c) => {
  const id = idParam(c);
  const ask = await unconfirmed(c, "Delete this user and everything they own? This cannot be undone.", userBack(id));
  if (ask) return ask;
  const after = await removeUser(c.get("lifecycle"), c.env, c.get("db"), actor(c), id);
  c.executionCtx.waitUntil(after());
  return redirect(c, `${P}/users`, "user-deleted");
});

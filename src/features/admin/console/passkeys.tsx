/** A user's passkeys on their page (name, created, last used) and the confirmed, audited removal of one. */
import { Hono } from "hono";
import type { FC } from "hono/jsx";
import * as v from "valibot";
import { AppError } from "../../../errors";
import type { PasskeyInfo } from "../../auth";
import { removeUserPasskey } from "../passkeys";
import type { ConsoleEnv } from "./context";
import { actor, form, idParam, redirect, unconfirmed } from "./page";
import { type Column, DataTable } from "./table";
import { ActionForm, fmtDate, P } from "./ui";

export const UserPasskeys: FC<{ userId: string; who: string; passkeys: PasskeyInfo[]; csrf: string }> = (p) => {
  const columns: Column<PasskeyInfo>[] = [
    { header: "Name", cell: (k) => k.name },
    { header: "Added", cell: (k) => fmtDate(k.createdAt) },
    { header: "Last used", cell: (k) => (k.lastUsedAt ? fmtDate(k.lastUsedAt) : <span class="muted">never</span>) },
    {
      header: "",
      class: "right",
      cell: (k) => (
        <ActionForm
          action={`${P}/users/${p.userId}/passkeys/remove`}
          csrf={p.csrf}
          fields={{ passkeyId: k.id }}
          confirm={`Remove the passkey "${k.name}" of ${p.who}? That device can no longer sign in with it.`}
        >
          <button type="submit" class="btn warn">
            Remove
          </button>
        </ActionForm>
      ),
    },
  ];
  return (
    <section class="card">
      <h2>Passkeys</h2>
      <DataTable rows={p.passkeys} columns={columns} empty="No passkeys." />
    </section>
  );
};

const PasskeyId = v.pipe(v.string(), v.minLength(1), v.maxLength(64));

/** Mounted at `/admin/users`. */
export const passkeyActions = new Hono<ConsoleEnv>();

passkeyActions.post("/:id/passkeys/remove", async (c) => {
  const id = idParam(c);
  const back = `${P}/users/${id}`;
  const ask = await unconfirmed(c, "Remove this passkey? That device can no longer sign in with it.", back);
  if (ask) return ask;
  const passkeyId = v.safeParse(PasskeyId, (await form(c)).passkeyId);
  if (!passkeyId.success) throw new AppError("validation_failed", "No passkey named.");
  await removeUserPasskey(c.get("db"), actor(c), id, passkeyId.output);
  return redirect(c, back, "passkey-removed");
});

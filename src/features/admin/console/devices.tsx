/** A user's push devices, each with a test push. */
import { Hono } from "hono";
import type { FC } from "hono/jsx";
import { limits } from "../../../config";
import { AppError } from "../../../errors";
import { enqueue } from "../../../lifecycle";
import { type Device, listDevices } from "../../push";
import type { AdminUser } from "../schemas";
import { recordAudit } from "../service";
import type { ConsoleEnv } from "./context";
import { actor, idParam, limitOf, page, redirect } from "./page";
import { type Column, DataTable } from "./table";
import { ActionForm, fmtDate, P, short } from "./ui";
import { loadUser } from "./users";

const deviceColumns = (base: string, csrf: string): Column<Device>[] => [
  { header: "Platform", cell: (d) => d.platform },
  { header: "Provider", cell: (d) => d.provider },
  {
    header: "Token",
    cell: (d) => <code title={d.token}>{d.token.length > 24 ? `${d.token.slice(0, 24)}…` : d.token}</code>,
  },
  { header: "Registered", cell: (d) => fmtDate(d.updatedAt) },
  {
    header: "",
    class: "right",
    cell: (d) => (
      <ActionForm action={`${base}/devices/${d.id}/test-push`} csrf={csrf}>
        <button type="submit" class="btn small">
          Send test push
        </button>
      </ActionForm>
    ),
  },
];

const DevicesPage: FC<{ u: AdminUser; items: Device[]; next: string | null; paged: boolean; csrf: string }> = (p) => {
  const base = `${P}/users/${p.u.id}`;
  return (
    <>
      <p class="crumbs">
        <a href={`${P}/users`}>Users</a> / <a href={base}>{p.u.email ?? short(p.u.id)}</a> / Devices
      </p>
      <h1>Devices</h1>
      <DataTable
        rows={p.items}
        columns={deviceColumns(base, p.csrf)}
        empty="This user has no push devices."
        pager={{ base: `${base}/devices`, next: p.next, paged: p.paged }}
      />
    </>
  );
};

/** Mounted at `/admin/users/:id/devices`. */
export const devices = new Hono<ConsoleEnv>();

devices.get("/", async (c) => {
  const id = idParam(c);
  const u = await loadUser(c);
  const cursor = c.req.query("cursor");
  const res = await listDevices(c.get("db"), id, limitOf(), cursor);
  return page(
    c,
    "Devices",
    "users",
    <DevicesPage u={u} items={res.items} next={res.nextCursor} paged={cursor !== undefined} csrf={c.get("csrf")} />,
  );
});

devices.post("/:deviceId/test-push", async (c) => {
  const id = idParam(c);
  const deviceId = idParam(c, "deviceId");
  const owned = await listDevices(c.get("db"), id, limits.pushDevicesPerUser);
  if (!owned.items.some((d) => d.id === deviceId)) throw new AppError("not_found", "No such device of this user.");
  const message = {
    title: `${c.get("config").appName} test`,
    body: "A test notification from the admin console.",
    data: {},
  };
  await enqueue(c.env, { type: "push.deliver", targets: [{ deviceId, userId: id }], message, attempt: 1 });
  await recordAudit(c.get("db"), actor(c), { action: "push.test", target: `user:${id}`, detail: { deviceId } });
  return redirect(c, `${P}/users/${id}/devices`, "pushed");
});

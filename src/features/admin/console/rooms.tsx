/** Chat rooms: the list, a room's history and members, and deleting a message as the room's owner would. */
import { Hono } from "hono";
import type { FC } from "hono/jsx";
import * as v from "valibot";
import { AppError } from "../../../errors";
import { type AdminRoom, listAllRooms, type Member, type Message, roomStub, roomWithMembers } from "../../chat";
import { recordAudit } from "../service";
import type { ConsoleEnv } from "./context";
import { actor, idParam, limitOf, page, redirect, unconfirmed } from "./page";
import { type Column, DataTable } from "./table";
import { ActionForm, Empty, fmtDate, P, short } from "./ui";

const roomColumns: Column<AdminRoom>[] = [
  {
    header: "Name",
    cell: (r) => r.name ?? (r.kind === "direct" ? "Direct conversation" : short(r.id)),
    link: (r) => `${P}/rooms/${r.id}`,
    linkClass: "strong",
  },
  { header: "Kind", cell: (r) => r.kind },
  { header: "Members", cell: (r) => r.memberCount },
  { header: "Messages", cell: (r) => r.lastSeq },
  { header: "Last activity", cell: (r) => fmtDate(r.lastActivityAt) },
];

const RoomsPage: FC<{ items: AdminRoom[]; next: string | null; paged: boolean }> = (p) => (
  <>
    <h1>Rooms</h1>
    <DataTable
      rows={p.items}
      columns={roomColumns}
      empty="No rooms yet."
      pager={{ base: `${P}/rooms`, next: p.next, paged: p.paged }}
    />
  </>
);

type AdminMember = Member & { email: string | null; name: string | null; joinedAt: string };

const MessageItem: FC<{ m: Message; roomId: string; sender: string; csrf: string }> = ({ m, roomId, sender, csrf }) => (
  <li class={m.deleted ? "message deleted" : "message"}>
    <div class="meta">
      <span class="seq">#{m.seq}</span> <a href={`${P}/users/${m.senderId}`}>{sender}</a>{" "}
      <span class="muted">{fmtDate(m.createdAt)}</span>
    </div>
    <div class="text">
      {m.deleted ? <em class="muted">deleted</em> : (m.text ?? (m.fileId ? `📎 file ${short(m.fileId)}` : ""))}
    </div>
    {m.deleted ? null : (
      <ActionForm
        action={`${P}/rooms/${roomId}/messages/${m.seq}/delete`}
        csrf={csrf}
        confirm={`Delete message #${m.seq}? Members see it as deleted.`}
        class="inline msg-action"
      >
        <button type="submit" class="btn small ghost danger-text">
          Delete
        </button>
      </ActionForm>
    )}
  </li>
);

const RoomPage: FC<{
  room: { id: string; name: string | null; kind: string; createdAt: string };
  members: AdminMember[];
  messages: Message[];
  older: number | null;
  csrf: string;
}> = (p) => {
  const names = new Map(p.members.map((m) => [m.userId, m.name ?? m.email ?? short(m.userId)]));
  return (
    <>
      <p class="crumbs">
        <a href={`${P}/rooms`}>Rooms</a> / {p.room.name ?? short(p.room.id)}
      </p>
      <h1>{p.room.name ?? (p.room.kind === "direct" ? "Direct conversation" : "Room")}</h1>
      <div class="grid room">
        <section class="card">
          <h2>History</h2>
          {p.older !== null ? (
            <p>
              <a class="btn small ghost" href={`${P}/rooms/${p.room.id}?before=${p.older}`}>
                « Older messages
              </a>
            </p>
          ) : null}
          {p.messages.length ? (
            <ol class="messages">
              {p.messages.map((m) => (
                <MessageItem
                  m={m}
                  roomId={p.room.id}
                  sender={names.get(m.senderId) ?? short(m.senderId)}
                  csrf={p.csrf}
                />
              ))}
            </ol>
          ) : (
            <Empty>No messages yet.</Empty>
          )}
        </section>
        <section class="card">
          <h2>Members ({p.members.length})</h2>
          <ul class="members">
            {p.members.map((m) => (
              <li>
                <a href={`${P}/users/${m.userId}`}>{m.name ?? m.email ?? short(m.userId)}</a>{" "}
                {m.role === "owner" ? <span class="pill accent">owner</span> : null}
                <div class="muted small">read up to #{m.lastReadSeq}</div>
              </li>
            ))}
          </ul>
        </section>
      </div>
    </>
  );
};

/** Mounted at `/admin/rooms`. */
export const rooms = new Hono<ConsoleEnv>();

rooms.get("/", async (c) => {
  const cursor = c.req.query("cursor");
  const res = await listAllRooms(c.get("db"), limitOf(), cursor);
  return page(c, "Rooms", "rooms", <RoomsPage items={res.items} next={res.nextCursor} paged={cursor !== undefined} />);
});

const Before = v.optional(v.pipe(v.string(), v.regex(/^\d{1,15}$/), v.transform(Number)));

rooms.get("/:id", async (c) => {
  const id = idParam(c);
  const data = await roomWithMembers(c.get("db"), id);
  if (!data) throw new AppError("not_found", "No such room.");
  const before = v.safeParse(Before, c.req.query("before"));
  const history = await roomStub(c.env, id).history(id, {
    before: before.success ? before.output : undefined,
    limit: limitOf() * 2,
  });
  const older = history.more ? (history.items[0]?.seq ?? null) : null;
  // Members' messages: the admin's look at them is recorded.
  await recordAudit(c.get("db"), actor(c), {
    action: "room.history_view",
    target: `room:${id}`,
    detail: { before: before.success ? before.output : undefined, messages: history.items.length },
  });
  return page(
    c,
    data.room.name ?? "Room",
    "rooms",
    <RoomPage room={data.room} members={data.members} messages={history.items} older={older} csrf={c.get("csrf")} />,
  );
});

rooms.post("/:id/messages/:seq/delete", async (c) => {
  const id = idParam(c);
  const seq = Number(c.req.param("seq"));
  if (!/^\d{1,15}$/.test(c.req.param("seq")) || seq < 1) throw new AppError("not_found", "No such message.");
  const ask = await unconfirmed(c, `Delete message #${seq}? Members see it as deleted.`, `${P}/rooms/${id}`);
  if (ask) return ask;
  if (!(await roomWithMembers(c.get("db"), id))) throw new AppError("not_found", "No such room.");
  // The room's own deletion (as DELETE /v1/rooms/:id/messages/:seq), acting as the room's owner.
  const r = await roomStub(c.env, id).deleteMessage(id, seq, c.get("admin").userId, true);
  if (!r.ok) throw new AppError(r.code, r.detail);
  await recordAudit(c.get("db"), actor(c), { action: "message.delete", target: `room:${id}#${seq}` });
  return redirect(c, `${P}/rooms/${id}`, "message-deleted");
});

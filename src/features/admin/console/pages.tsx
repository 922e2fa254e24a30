/** The console's pages (server-rendered; the routes in app.tsx load the data and pick the page). */
import type { FC } from "hono/jsx";
import type { AdminRoom, Member, Message } from "../../chat";
import type { Collection, RecordRow } from "../../collections";
import type { FileRow } from "../../files";
import type { Device } from "../../push";
import type { AdminUser, AdminUserDetail, AuditEntry } from "../schemas";
import type { Overview } from "../service";
import { type FieldInput, fieldInputs } from "./forms";
import { ActionForm, Empty, ErrorBox, fmtBytes, fmtDate, P, Pager, Stat, StatusPill, short } from "./ui";

type FieldErrors = { path: string; message: string }[] | undefined;

export const LoginPage: FC<{ csrf: string; email?: string; error?: string | undefined }> = (p) => (
  <section class="card login">
    <h1>Sign in</h1>
    <p class="muted">For administrators of this backend.</p>
    {p.error ? <ErrorBox message={p.error} /> : null}
    <form method="post" action={`${P}/login`} class="stack">
      <input type="hidden" name="_csrf" value={p.csrf} />
      <label>
        Email
        <input type="email" name="email" autocomplete="username" required value={p.email ?? ""} autofocus />
      </label>
      <label>
        Password
        <input type="password" name="password" autocomplete="current-password" required />
      </label>
      <button type="submit" class="btn primary">
        Sign in
      </button>
    </form>
  </section>
);

export const ConfirmPage: FC<{
  action: string;
  csrf: string;
  message: string;
  fields: Record<string, string>;
  back: string;
}> = (p) => (
  <section class="card confirm">
    <h1>Are you sure?</h1>
    <p>{p.message}</p>
    <div class="actions">
      <ActionForm action={p.action} csrf={p.csrf} fields={{ ...p.fields, confirm: "yes" }}>
        <button type="submit" class="btn danger">
          Yes, do it
        </button>
      </ActionForm>
      <a href={p.back} class="btn ghost">
        Cancel
      </a>
    </div>
  </section>
);

export const ErrorPage: FC<{ status: number; message: string }> = ({ status, message }) => (
  <section class="card">
    <h1>{status === 404 ? "Not found" : status === 403 ? "Refused" : "Something went wrong"}</h1>
    <p>{message}</p>
    <p>
      <a href={P}>Back to the overview</a>
    </p>
  </section>
);

// --- overview ----------------------------------------------------------------------------------

export const OverviewPage: FC<{ o: Overview }> = ({ o }) => (
  <>
    <h1>Overview</h1>
    <div class="stats">
      <Stat label="Users" value={o.users} href={`${P}/users`} />
      <Stat label="Admins" value={o.admins} />
      <Stat label="Disabled" value={o.disabled} />
      {o.records.map((r) => (
        <Stat label={`Records in ${r.collection}`} value={r.n} href={`${P}/collections/${r.collection}`} />
      ))}
      <Stat label="Files" value={o.files} href={`${P}/files`} />
      <Stat label="Storage used" value={fmtBytes(o.bytes)} href={`${P}/files`} />
      <Stat label="Rooms" value={o.rooms} href={`${P}/rooms`} />
      <Stat label="Push devices" value={o.devices} />
    </div>
    <section class="card">
      <h2>Recent signups</h2>
      {o.recent.length ? <UserTable users={o.recent} /> : <Empty>Nobody has signed up yet.</Empty>}
    </section>
  </>
);

// --- users -------------------------------------------------------------------------------------

const UserTable: FC<{ users: AdminUser[] }> = ({ users }) => (
  <div class="table-wrap">
    <table>
      <thead>
        <tr>
          <th>Email</th>
          <th>Name</th>
          <th>Status</th>
          <th>Signed up</th>
        </tr>
      </thead>
      <tbody>
        {users.map((u) => (
          <tr>
            <td data-label="Email">
              <a href={`${P}/users/${u.id}`} class="strong">
                {u.email ?? `guest ${short(u.id)}`}
              </a>
            </td>
            <td data-label="Name">{u.name ?? <span class="muted">—</span>}</td>
            <td data-label="Status">
              <StatusPill disabled={u.disabled} role={u.role} anonymous={u.anonymous} />
            </td>
            <td data-label="Signed up">{fmtDate(u.createdAt)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  </div>
);

export const UsersPage: FC<{ q: string; items: AdminUser[]; next: string | null; paged: boolean }> = (p) => (
  <>
    <h1>Users</h1>
    <form method="get" action={`${P}/users`} class="toolbar">
      <input
        type="search"
        name="q"
        value={p.q}
        placeholder="Search by email or name"
        aria-label="Search users"
        maxlength={100}
      />
      <button type="submit" class="btn">
        Search
      </button>
      {p.q ? (
        <a href={`${P}/users`} class="btn ghost">
          Clear
        </a>
      ) : null}
    </form>
    <section class="card flush">
      {p.items.length ? (
        <UserTable users={p.items} />
      ) : (
        <Empty>{p.q ? "No user matches this search." : "No users yet."}</Empty>
      )}
    </section>
    <Pager base={`${P}/users`} params={{ q: p.q }} next={p.next} paged={p.paged} />
  </>
);

export const UserPage: FC<{ u: AdminUserDetail; csrf: string; self: boolean; audit: AuditEntry[] }> = ({
  u,
  csrf,
  self,
  audit,
}) => {
  const base = `${P}/users/${u.id}`;
  const who = u.email ?? `guest ${short(u.id)}`;
  return (
    <>
      <p class="crumbs">
        <a href={`${P}/users`}>Users</a> / {who}
      </p>
      <div class="title-row">
        <h1>{u.name ?? who}</h1>
        <StatusPill disabled={u.disabled} role={u.role} anonymous={u.anonymous} />
      </div>
      <div class="grid two">
        <section class="card">
          <h2>Account</h2>
          <dl class="facts">
            <dt>Id</dt>
            <dd>
              <code>{u.id}</code>
            </dd>
            <dt>Email</dt>
            <dd>
              {u.email ?? "—"}{" "}
              {u.email ? <span class="muted">{u.emailVerified ? "(verified)" : "(not verified)"}</span> : null}
            </dd>
            <dt>Name</dt>
            <dd>{u.name ?? "—"}</dd>
            <dt>Role</dt>
            <dd>{u.role}</dd>
            <dt>Signed up</dt>
            <dd>{fmtDate(u.createdAt)}</dd>
            <dt>Updated</dt>
            <dd>{fmtDate(u.updatedAt)}</dd>
          </dl>
        </section>
        <section class="card">
          <h2>Usage</h2>
          <div class="stats compact">
            <Stat label="Live sessions" value={u.counts.sessions} />
            <Stat label="Records" value={u.counts.records} />
            <Stat label="Files" value={u.counts.files} />
            <Stat label="Stored" value={fmtBytes(u.counts.bytes)} />
            <Stat label="Rooms" value={u.counts.rooms} />
            <Stat label="Devices" value={u.counts.devices} href={`${base}/devices`} />
          </div>
        </section>
      </div>
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
              confirm={`Delete ${who} and everything they own (records, files, devices, memberships)? This cannot be undone.`}
            >
              <button type="submit" class="btn danger">
                Delete user
              </button>
            </ActionForm>
          )}
        </div>
      </section>
      <section class="card">
        <h2>Admin actions on this user</h2>
        {audit.length ? <AuditTable items={audit} /> : <Empty>None yet.</Empty>}
      </section>
    </>
  );
};

export const DevicesPage: FC<{ u: AdminUser; items: Device[]; next: string | null; paged: boolean; csrf: string }> = (
  p,
) => {
  const base = `${P}/users/${p.u.id}`;
  return (
    <>
      <p class="crumbs">
        <a href={`${P}/users`}>Users</a> / <a href={base}>{p.u.email ?? short(p.u.id)}</a> / Devices
      </p>
      <h1>Devices</h1>
      <section class="card flush">
        {p.items.length ? (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>Platform</th>
                  <th>Provider</th>
                  <th>Token</th>
                  <th>Registered</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {p.items.map((d) => (
                  <tr>
                    <td data-label="Platform">{d.platform}</td>
                    <td data-label="Provider">{d.provider}</td>
                    <td data-label="Token">
                      <code title={d.token}>{d.token.length > 24 ? `${d.token.slice(0, 24)}…` : d.token}</code>
                    </td>
                    <td data-label="Registered">{fmtDate(d.updatedAt)}</td>
                    <td class="right">
                      <ActionForm action={`${base}/devices/${d.id}/test-push`} csrf={p.csrf}>
                        <button type="submit" class="btn small">
                          Send test push
                        </button>
                      </ActionForm>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <Empty>This user has no push devices.</Empty>
        )}
      </section>
      <Pager base={`${base}/devices`} next={p.next} paged={p.paged} />
    </>
  );
};

// --- audit -------------------------------------------------------------------------------------

const Target: FC<{ target: string }> = ({ target }) => {
  const [kind, rest] = [target.slice(0, target.indexOf(":")), target.slice(target.indexOf(":") + 1)];
  if (kind === "user") return <a href={`${P}/users/${rest}`}>{target}</a>;
  if (kind === "room") return <a href={`${P}/rooms/${rest.split("#")[0]}`}>{target}</a>;
  return <span>{target}</span>;
};

const AuditTable: FC<{ items: AuditEntry[] }> = ({ items }) => (
  <div class="table-wrap">
    <table>
      <thead>
        <tr>
          <th>When</th>
          <th>Who</th>
          <th>Action</th>
          <th>Target</th>
          <th>Request</th>
        </tr>
      </thead>
      <tbody>
        {items.map((e) => (
          <tr>
            <td data-label="When">{fmtDate(e.at)}</td>
            <td data-label="Who">
              {e.actorId === "service" ? (
                <span class="pill">service key</span>
              ) : (
                <a href={`${P}/users/${e.actorId}`}>{short(e.actorId)}</a>
              )}
            </td>
            <td data-label="Action">
              <code>{e.action}</code>
              {e.detail ? <span class="muted detail"> {JSON.stringify(e.detail)}</span> : null}
            </td>
            <td data-label="Target">
              <Target target={e.target} />
            </td>
            <td data-label="Request">
              <code class="muted">{short(e.requestId)}</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  </div>
);

export const AuditPage: FC<{ items: AuditEntry[]; next: string | null; paged: boolean }> = (p) => (
  <>
    <h1>Audit log</h1>
    <p class="muted">Every admin action, from this console, the admin API and the service key.</p>
    <section class="card flush">
      {p.items.length ? <AuditTable items={p.items} /> : <Empty>No admin action yet.</Empty>}
    </section>
    <Pager base={`${P}/audit`} next={p.next} paged={p.paged} />
  </>
);

// --- collections -------------------------------------------------------------------------------

const cell = (v: unknown): string => {
  if (v === null || v === undefined) return "—";
  if (Array.isArray(v)) return v.join(", ");
  const s = String(v);
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
};

export const CollectionPage: FC<{
  col: Collection;
  where: string;
  sort: string;
  sortable: string[];
  items: RecordRow[];
  next: string | null;
  paged: boolean;
  error?: { message: string; errors?: FieldErrors } | undefined;
}> = (p) => {
  const fields = Object.keys(p.col.fields);
  const base = `${P}/collections/${p.col.name}`;
  return (
    <>
      <h1>{p.col.name}</h1>
      <form method="get" action={base} class="toolbar filter">
        <input
          type="text"
          name="where"
          value={p.where}
          placeholder={'where, as in the API: {"pinned":true}'}
          aria-label="Filter (where)"
          class="grow mono"
        />
        <select name="sort" aria-label="Sort">
          {p.sortable
            .flatMap((k) => [k, `-${k}`])
            .map((s) => (
              <option value={s} selected={s === p.sort}>
                {s.startsWith("-") ? `${s.slice(1)} ↓` : `${s} ↑`}
              </option>
            ))}
        </select>
        <button type="submit" class="btn">
          Filter
        </button>
        {p.where ? (
          <a href={base} class="btn ghost">
            Clear
          </a>
        ) : null}
      </form>
      {p.error ? <ErrorBox message={p.error.message} errors={p.error.errors} /> : null}
      <section class="card flush">
        {p.items.length ? (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>Id</th>
                  {fields.map((f) => (
                    <th>{f}</th>
                  ))}
                  <th>Owner</th>
                  <th>Updated</th>
                </tr>
              </thead>
              <tbody>
                {p.items.map((r) => (
                  <tr>
                    <td data-label="Id">
                      <a href={`${base}/${r.id}`} class="strong mono">
                        {short(r.id)}
                      </a>
                    </td>
                    {fields.map((f) => (
                      <td data-label={f}>{cell(r[f])}</td>
                    ))}
                    <td data-label="Owner">
                      {r.ownerId ? <a href={`${P}/users/${r.ownerId}`}>{short(r.ownerId)}</a> : "—"}
                    </td>
                    <td data-label="Updated">{fmtDate(String(r.updatedAt))}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <Empty>{p.where ? "No record matches this filter." : "No records yet."}</Empty>
        )}
      </section>
      <Pager base={base} params={{ where: p.where || undefined, sort: p.sort }} next={p.next} paged={p.paged} />
    </>
  );
};

const Input: FC<{ f: FieldInput }> = ({ f }) => {
  if (f.control === "select")
    return (
      <select name={f.name} id={`f-${f.name}`}>
        {f.options.map((o) => (
          <option value={o} selected={o === f.value}>
            {o}
          </option>
        ))}
      </select>
    );
  if (f.control === "textarea")
    return (
      <textarea name={f.name} id={`f-${f.name}`} rows={f.rows}>
        {f.value}
      </textarea>
    );
  return (
    <input
      type={f.control}
      step={f.control === "number" ? "any" : undefined}
      name={f.name}
      id={`f-${f.name}`}
      value={f.value}
    />
  );
};

export const RecordPage: FC<{
  col: Collection;
  r: RecordRow;
  csrf: string;
  values?: Record<string, string> | undefined;
  error?: { message: string; errors?: FieldErrors } | undefined;
}> = (p) => {
  const base = `${P}/collections/${p.col.name}`;
  const inputs = fieldInputs(p.col, p.r, p.values);
  return (
    <>
      <p class="crumbs">
        <a href={base}>{p.col.name}</a> / <span class="mono">{short(p.r.id)}</span>
      </p>
      <h1>Record</h1>
      <div class="grid two">
        <section class="card">
          <h2>Edit</h2>
          {p.error ? <ErrorBox message={p.error.message} errors={p.error.errors} /> : null}
          <form method="post" action={`${base}/${p.r.id}`} class="stack">
            <input type="hidden" name="_csrf" value={p.csrf} />
            <input type="hidden" name="_version" value={String(p.r.version)} />
            {inputs.map((f) => (
              <label for={`f-${f.name}`}>
                <span>
                  {f.name} <span class="muted">{f.hint}</span>
                </span>
                <Input f={f} />
              </label>
            ))}
            <div class="actions">
              <button type="submit" class="btn primary">
                Save
              </button>
            </div>
          </form>
        </section>
        <section class="card">
          <h2>Details</h2>
          <dl class="facts">
            <dt>Id</dt>
            <dd>
              <code>{p.r.id}</code>
            </dd>
            <dt>Owner</dt>
            <dd>{p.r.ownerId ? <a href={`${P}/users/${p.r.ownerId}`}>{p.r.ownerId}</a> : "— (service)"}</dd>
            <dt>Created</dt>
            <dd>{fmtDate(String(p.r.createdAt))}</dd>
            <dt>Updated</dt>
            <dd>{fmtDate(String(p.r.updatedAt))}</dd>
            <dt>Version</dt>
            <dd>{p.r.version}</dd>
          </dl>
          <ActionForm
            action={`${base}/${p.r.id}/delete`}
            csrf={p.csrf}
            confirm="Delete this record? Synced clients will drop it too."
          >
            <button type="submit" class="btn danger">
              Delete record
            </button>
          </ActionForm>
        </section>
      </div>
    </>
  );
};

// --- files -------------------------------------------------------------------------------------

const RASTER = /^image\/(png|jpeg|gif|webp|avif)$/;
export const isRaster = (type: string) => RASTER.test(type);
const extensionOf = (name: string) => /\.([A-Za-z0-9]{1,4})$/.exec(name)?.[1] ?? "file";

export const FilesPage: FC<{ items: FileRow[]; next: string | null; paged: boolean; csrf: string }> = (p) => (
  <>
    <h1>Files</h1>
    <section class="card flush">
      {p.items.length ? (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th />
                <th>Name</th>
                <th>Type</th>
                <th>Size</th>
                <th>Owner</th>
                <th>Uploaded</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {p.items.map((f) => (
                <tr>
                  <td class="thumb-cell">
                    {isRaster(f.contentType) ? (
                      <img
                        class="thumb"
                        src={`${P}/files/${f.id}/content`}
                        alt=""
                        loading="lazy"
                        width={48}
                        height={48}
                      />
                    ) : (
                      <span class="thumb placeholder">{extensionOf(f.name)}</span>
                    )}
                  </td>
                  <td data-label="Name" class="strong">
                    {f.name}
                    {f.visibility === "public" ? <span class="pill">public</span> : null}
                  </td>
                  <td data-label="Type">{f.contentType}</td>
                  <td data-label="Size">{fmtBytes(f.size)}</td>
                  <td data-label="Owner">
                    <a href={`${P}/users/${f.ownerId}`}>{short(f.ownerId)}</a>
                  </td>
                  <td data-label="Uploaded">{fmtDate(f.createdAt)}</td>
                  <td class="right nowrap">
                    <a class="btn small ghost" href={`${P}/files/${f.id}/content?download=1`}>
                      Download
                    </a>
                    <ActionForm
                      action={`${P}/files/${f.id}/delete`}
                      csrf={p.csrf}
                      confirm={`Delete ${f.name}? Its bytes are removed from storage.`}
                    >
                      <button type="submit" class="btn small danger">
                        Delete
                      </button>
                    </ActionForm>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <Empty>No files yet.</Empty>
      )}
    </section>
    <Pager base={`${P}/files`} next={p.next} paged={p.paged} />
  </>
);

// --- rooms -------------------------------------------------------------------------------------

export const RoomsPage: FC<{ items: AdminRoom[]; next: string | null; paged: boolean }> = (p) => (
  <>
    <h1>Rooms</h1>
    <section class="card flush">
      {p.items.length ? (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Kind</th>
                <th>Members</th>
                <th>Messages</th>
                <th>Last activity</th>
              </tr>
            </thead>
            <tbody>
              {p.items.map((r) => (
                <tr>
                  <td data-label="Name">
                    <a class="strong" href={`${P}/rooms/${r.id}`}>
                      {r.name ?? (r.kind === "direct" ? "Direct conversation" : short(r.id))}
                    </a>
                  </td>
                  <td data-label="Kind">{r.kind}</td>
                  <td data-label="Members">{r.memberCount}</td>
                  <td data-label="Messages">{r.lastSeq}</td>
                  <td data-label="Last activity">{fmtDate(r.lastActivityAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <Empty>No rooms yet.</Empty>
      )}
    </section>
    <Pager base={`${P}/rooms`} next={p.next} paged={p.paged} />
  </>
);

type AdminMember = Member & { email: string | null; name: string | null; joinedAt: string };

export const RoomPage: FC<{
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
                <li class={m.deleted ? "message deleted" : "message"}>
                  <div class="meta">
                    <span class="seq">#{m.seq}</span>{" "}
                    <a href={`${P}/users/${m.senderId}`}>{names.get(m.senderId) ?? short(m.senderId)}</a>{" "}
                    <span class="muted">{fmtDate(m.createdAt)}</span>
                  </div>
                  <div class="text">
                    {m.deleted ? (
                      <em class="muted">deleted</em>
                    ) : (
                      (m.text ?? (m.fileId ? `📎 file ${short(m.fileId)}` : ""))
                    )}
                  </div>
                  {m.deleted ? null : (
                    <ActionForm
                      action={`${P}/rooms/${p.room.id}/messages/${m.seq}/delete`}
                      csrf={p.csrf}
                      confirm={`Delete message #${m.seq}? Members see it as deleted.`}
                      class="inline msg-action"
                    >
                      <button type="submit" class="btn small ghost danger-text">
                        Delete
                      </button>
                    </ActionForm>
                  )}
                </li>
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

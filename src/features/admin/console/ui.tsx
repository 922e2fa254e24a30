/**
 * The console's page frame and shared pieces, server-rendered with hono/jsx. No inline script or
 * style anywhere (the Content-Security-Policy allows neither): look in public/admin/admin.css,
 * behaviour in public/admin/admin.js (optional: every page works without it).
 */
import { raw } from "hono/html";
import type { Child, FC, PropsWithChildren } from "hono/jsx";
import { collections } from "../../collections";
import type { ConsoleAdmin } from "./context";

export const P = "/admin";

/** Fixed notices shown after an action (`?done=<key>`): never text taken from the URL. */
const notices = {
  disabled: "The user is disabled and signed out everywhere.",
  enabled: "The user is enabled again.",
  promoted: "The user is now an admin.",
  demoted: "The user is no longer an admin.",
  sessions: "Every session of the user has ended.",
  reset: "A password-reset mail is on its way.",
  "method-removed": "The sign-in method is removed.",
  "mfa-reset": "The second factor is removed; the user was told by mail.",
  "passkey-removed": "The passkey is removed.",
  "user-deleted": "The user and everything it owned are deleted.",
  saved: "The record is saved.",
  "record-deleted": "The record is deleted.",
  "file-deleted": "The file is deleted.",
  "message-deleted": "The message is deleted.",
  "member-removed": "The member is removed from the team.",
  "run-queued": "The run is queued again.",
  "invitation-revoked": "The invitation is revoked.",
  pushed: "A test notification is queued for the device.",
  "debug-token-revoked": "The debug token is revoked.",
  "webhook-deleted": "The webhook and its deliveries are deleted.",
  "webhook-enabled": "The webhook is enabled again.",
  "webhook-disabled": "The webhook is disabled; its waiting deliveries are stopped.",
  redelivered: "The delivery is queued again.",
  "config-reset": "The key is back to its code default.",
} as const;
export type Notice = keyof typeof notices;
export const isNotice = (s: string | undefined): s is Notice => s !== undefined && Object.hasOwn(notices, s);

export const fmtDate = (iso: string | null | undefined) => (iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : "—");

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export const short = (id: string) => (id.length > 13 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id);

export type Section =
  | "overview"
  | "users"
  | `collection:${string}`
  | "files"
  | "rooms"
  | "teams"
  | "logic"
  | "app-check"
  | "webhooks"
  | "config"
  | "audit";

const NavLink: FC<{ href: string; active: boolean; children: Child }> = ({ href, active, children }) => (
  <a href={href} class={active ? "nav-link active" : "nav-link"} aria-current={active ? "page" : undefined}>
    {children}
  </a>
);

/** The page frame: header with navigation and sign-out, the notice, the content. */
export const Layout: FC<
  PropsWithChildren<{
    title: string;
    appName: string;
    admin?: ConsoleAdmin;
    csrf?: string;
    section?: Section;
    notice?: Notice | undefined;
  }>
> = (p) => (
  <>
    {raw("<!doctype html>")}
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="color-scheme" content="light dark" />
        <meta name="referrer" content="no-referrer" />
        <title>{`${p.title} · ${p.appName} admin`}</title>
        <link rel="stylesheet" href={`${P}/admin.css`} />
        <script src={`${P}/admin.js`} defer />
      </head>
      <body>
        {p.admin && p.csrf ? (
          <header class="top">
            <a class="brand" href={P}>
              <span class="logo" aria-hidden="true">
                ◆
              </span>{" "}
              {p.appName}
              <span class="badge">admin</span>
            </a>
            <nav class="nav" aria-label="Sections">
              <NavLink href={P} active={p.section === "overview"}>
                Overview
              </NavLink>
              <NavLink href={`${P}/users`} active={p.section === "users"}>
                Users
              </NavLink>
              {collections.map((col) => (
                <NavLink href={`${P}/collections/${col.name}`} active={p.section === `collection:${col.name}`}>
                  {col.name}
                </NavLink>
              ))}
              <NavLink href={`${P}/files`} active={p.section === "files"}>
                Files
              </NavLink>
              <NavLink href={`${P}/rooms`} active={p.section === "rooms"}>
                Rooms
              </NavLink>
              <NavLink href={`${P}/teams`} active={p.section === "teams"}>
                Teams
              </NavLink>
              <NavLink href={`${P}/logic`} active={p.section === "logic"}>
                After hooks
              </NavLink>
              <NavLink href={`${P}/webhooks`} active={p.section === "webhooks"}>
                Webhooks
              </NavLink>
              <NavLink href={`${P}/config`} active={p.section === "config"}>
                Config
              </NavLink>
              <NavLink href={`${P}/app-check`} active={p.section === "app-check"}>
                App integrity
              </NavLink>
              <NavLink href={`${P}/audit`} active={p.section === "audit"}>
                Audit log
              </NavLink>
            </nav>
            <form method="post" action={`${P}/logout`} class="signout">
              <input type="hidden" name="_csrf" value={p.csrf} />
              <span class="who">{p.admin.email ?? p.admin.name ?? short(p.admin.userId)}</span>
              <button type="submit" class="btn ghost small">
                Sign out
              </button>
            </form>
          </header>
        ) : null}
        <main class={p.admin ? "main" : "main narrow"}>
          {p.notice ? (
            <p class="notice" role="status">
              {notices[p.notice]}
            </p>
          ) : null}
          {p.children}
        </main>
      </body>
    </html>
  </>
);

/**
 * A form for one action. With `confirm`, a browser with the script asks first; without it the
 * server answers with a confirmation page (nothing destructive happens on the first POST).
 */
export const ActionForm: FC<
  PropsWithChildren<{ action: string; csrf: string; confirm?: string; fields?: Record<string, string>; class?: string }>
> = (p) => (
  <form method="post" action={p.action} class={p.class ?? "inline"} data-confirm={p.confirm}>
    <input type="hidden" name="_csrf" value={p.csrf} />
    {Object.entries(p.fields ?? {}).map(([k, v]) => (
      <input type="hidden" name={k} value={v} />
    ))}
    {p.children}
  </form>
);

export interface PagerProps {
  /** The list's path; `params` (its filters) are kept on every page link. */
  base: string;
  params?: Record<string, string | undefined>;
  /** The next page's cursor, if any. */
  next: string | null;
  /** True past the first page (a cursor was given): shows "First page". */
  paged: boolean;
}

/** Forward-only paging (cursors): the next page, and back to the first. */
export const Pager: FC<PagerProps> = ({ base, params = {}, next, paged }) => {
  const qs = (extra: Record<string, string>) => {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...params, ...extra })) if (v) u.set(k, v);
    const s = u.toString();
    return s ? `${base}?${s}` : base;
  };
  if (!next && !paged) return null;
  return (
    <nav class="pager" aria-label="Pages">
      {paged ? (
        <a href={qs({})} class="btn ghost small">
          « First page
        </a>
      ) : (
        <span />
      )}
      {next ? (
        <a href={qs({ cursor: next })} class="btn ghost small" rel="next">
          Next page »
        </a>
      ) : null}
    </nav>
  );
};

export const Empty: FC<{ children: Child }> = ({ children }) => <p class="empty">{children}</p>;

/** A validation or action error, with the field errors when there are some. */
export const ErrorBox: FC<{ message: string; errors?: { path: string; message: string }[] | undefined }> = ({
  message,
  errors,
}) => (
  <div class="error" role="alert">
    <strong>{message}</strong>
    {errors?.length ? (
      <ul>
        {errors.map((e) => (
          <li>
            <code>{e.path}</code>: {e.message}
          </li>
        ))}
      </ul>
    ) : null}
  </div>
);

export const Stat: FC<{ label: string; value: string | number; href?: string }> = ({ label, value, href }) => (
  <div class="stat">
    <div class="stat-value">{href ? <a href={href}>{value}</a> : value}</div>
    <div class="stat-label">{label}</div>
  </div>
);

export const StatusPill: FC<{ disabled: boolean; role: string; anonymous?: boolean }> = (u) => (
  <span class="pills">
    {u.role === "admin" ? <span class="pill accent">admin</span> : null}
    {u.disabled ? <span class="pill danger">disabled</span> : <span class="pill ok">active</span>}
    {u.anonymous ? <span class="pill">guest</span> : null}
  </span>
);

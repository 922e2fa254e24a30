/**
 * Short links: their rows (owned by their creator), the open counts (kept in memory per isolate and written in
 * coalesced batches: no D1 write per open), and the page `/l/:code` serves. See docs/release.md.
 */
import { and, desc, eq, sql } from "drizzle-orm";
import { limits } from "../../config";
import type { Database } from "../../db";
import { shortLinks } from "../../db/schema";
import { AppError } from "../../errors";
import { randomToken } from "../../lib/crypto";
import { nowIso } from "../../lib/ids";
import { afterTimeId, decodeTimeIdCursor, encodeTimeIdCursor, keysetPage } from "../../lib/keyset";

export type LinkRow = typeof shortLinks.$inferSelect;

export interface LinkInput {
  path: string;
  fallbackUrl?: string | undefined;
  title?: string | undefined;
  imageUrl?: string | undefined;
}

/** A link as the API shows it (`url`: the short link itself). */
export const toLink = (row: LinkRow, base: string) => ({
  code: row.code,
  url: `${base}/l/${row.code}`,
  path: row.path,
  fallbackUrl: row.fallbackUrl,
  title: row.title,
  imageUrl: row.imageUrl,
  clicks: row.clicks,
  createdAt: row.createdAt,
});

/** A new link of `ownerId`'s; its code is 96 random bits (unguessable). */
export async function createLink(db: Database, ownerId: string, input: LinkInput): Promise<LinkRow> {
  const row: LinkRow = {
    code: randomToken(12),
    ownerId,
    path: input.path,
    fallbackUrl: input.fallbackUrl ?? null,
    title: input.title ?? null,
    imageUrl: input.imageUrl ?? null,
    clicks: 0,
    createdAt: nowIso(),
  };
  await db.insert(shortLinks).values(row);
  return row;
}

export const getLink = (db: Database, code: string): Promise<LinkRow | undefined> =>
  db.select().from(shortLinks).where(eq(shortLinks.code, code)).get();

/** A page of links, newest first: `ownerId`'s, or everyone's (the admin's list). */
export async function listLinks(db: Database, ownerId: string | null, cursor: string | undefined, limit: number) {
  const after = cursor ? decodeTimeIdCursor(cursor) : null;
  const rows = await db
    .select()
    .from(shortLinks)
    .where(
      and(
        ownerId === null ? undefined : eq(shortLinks.ownerId, ownerId),
        afterTimeId(shortLinks.createdAt, shortLinks.code, after),
      ),
    )
    .orderBy(desc(shortLinks.createdAt), desc(shortLinks.code))
    .limit(limit + 1);
  return keysetPage(rows, limit, (r) => encodeTimeIdCursor(r.createdAt, r.code));
}

/** Deletes `ownerId`'s link; someone else's, or none, is `not_found`. */
export async function deleteLink(db: Database, ownerId: string, code: string): Promise<void> {
  const gone = await db
    .delete(shortLinks)
    .where(and(eq(shortLinks.code, code), eq(shortLinks.ownerId, ownerId)))
    .returning({ code: shortLinks.code });
  if (gone.length === 0) throw new AppError("not_found", "No such link of yours.");
}

// --- open counts ----------------------------------------------------------------------------

/** Opens counted in this isolate and not written yet. Lost if the isolate ends first (docs/release.md). */
const pending = new Map<string, number>();
let pendingTotal = 0;
let oldestPendingAt = 0;

/**
 * Counts one open; returns the write of the counts held here when there are `linkClicksFlushEvery` of them or
 * the oldest is `linkClicksFlushSec` old (run it in `waitUntil`), else null.
 */
export function countOpen(db: Database, code: string, now = Date.now()): Promise<void> | null {
  if (pendingTotal === 0) oldestPendingAt = now;
  pending.set(code, (pending.get(code) ?? 0) + 1);
  pendingTotal++;
  if (pendingTotal < limits.linkClicksFlushEvery && now - oldestPendingAt < limits.linkClicksFlushSec * 1000)
    return null;
  return flushOpens(db);
}

/** Writes the counts held here in one batch. */
export async function flushOpens(db: Database): Promise<void> {
  const counts = [...pending].slice(0, 50);
  if (counts.length === 0) return;
  for (const [code, n] of counts) {
    pending.delete(code);
    pendingTotal -= n;
  }
  if (pendingTotal === 0) oldestPendingAt = 0;
  const updates = counts.map(([code, n]) =>
    db
      .update(shortLinks)
      .set({ clicks: sql`${shortLinks.clicks} + ${n}` })
      .where(eq(shortLinks.code, code)),
  );
  // A failed write loses these counts (docs/release.md): counts are a measure, not a ledger.
  await db
    .batch(updates as [(typeof updates)[number], ...typeof updates])
    .catch((e: Error) => console.error("links: writing open counts failed:", e.message));
}

// --- the page ---------------------------------------------------------------------------------

/** Who opened a short link, by user agent. */
export type Opener = "ios" | "android" | "bot" | "desktop";

const BOT_RE =
  /facebookexternalhit|facebot|twitterbot|slackbot|linkedinbot|discordbot|whatsapp|telegrambot|skypeuripreview|pinterest|redditbot|applebot|googlebot|bingbot|embedly|vkshare|iframely|mastodon|bluesky/i;

export function openerOf(userAgent: string | undefined): Opener {
  const ua = userAgent ?? "";
  if (BOT_RE.test(ua)) return "bot";
  if (/iPhone|iPad|iPod/.test(ua)) return "ios";
  if (/Android/.test(ua)) return "android";
  return "desktop";
}

const escapeHtml = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch] as string,
  );

/** The page for preview bots and desktops without a fallback: Open Graph tags (escaped) and a link onward. */
export function linkPage(link: LinkRow, url: string, appName: string, onward: string | null): string {
  const title = escapeHtml(link.title ?? appName);
  const meta = [
    `<meta property="og:title" content="${title}">`,
    `<meta property="og:type" content="website">`,
    `<meta property="og:url" content="${escapeHtml(url)}">`,
    link.imageUrl ? `<meta property="og:image" content="${escapeHtml(link.imageUrl)}">` : "",
  ].filter(Boolean);
  const next = onward ? `<p><a href="${escapeHtml(onward)}">Continue</a></p>` : "";
  return (
    `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
    `<title>${title}</title>${meta.join("")}</head><body><h1>${title}</h1>${next}</body></html>`
  );
}

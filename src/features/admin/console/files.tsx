/** Files: every stored file with its thumbnail, its bytes (inline only for raster images), deletion. */
import { Hono } from "hono";
import type { FC } from "hono/jsx";
import { AppError } from "../../../errors";
import { isId } from "../../../lib/ids";
import { deleteFile, type FileRow, getFile, listAllFiles, serveContent } from "../../files";
import { auditStatement, recordAudit } from "../service";
import type { ConsoleEnv } from "./context";
import { actor, idParam, limitOf, page, redirect, unconfirmed } from "./page";
import { type Column, DataTable } from "./table";
import { ActionForm, fmtBytes, fmtDate, P, short } from "./ui";

const RASTER = /^image\/(png|jpeg|gif|webp|avif)$/;
const isRaster = (type: string) => RASTER.test(type);
const extensionOf = (name: string) => /\.([A-Za-z0-9]{1,4})$/.exec(name)?.[1] ?? "file";

const fileColumns = (csrf: string): Column<FileRow>[] => [
  {
    header: "",
    class: "thumb-cell",
    cell: (f) =>
      isRaster(f.contentType) ? (
        <img class="thumb" src={`${P}/files/${f.id}/content`} alt="" loading="lazy" width={48} height={48} />
      ) : (
        <span class="thumb placeholder">{extensionOf(f.name)}</span>
      ),
  },
  {
    header: "Name",
    class: "strong",
    cell: (f) => (
      <>
        {f.name}
        {f.visibility === "public" ? <span class="pill">public</span> : null}
      </>
    ),
  },
  { header: "Type", cell: (f) => f.contentType },
  { header: "Size", cell: (f) => fmtBytes(f.size) },
  { header: "Owner", cell: (f) => short(f.ownerId), link: (f) => `${P}/users/${f.ownerId}` },
  { header: "Uploaded", cell: (f) => fmtDate(f.createdAt) },
  {
    header: "",
    class: "right nowrap",
    cell: (f) => (
      <>
        <a class="btn small ghost" href={`${P}/files/${f.id}/content?download=1`}>
          Download
        </a>
        <ActionForm
          action={`${P}/files/${f.id}/delete`}
          csrf={csrf}
          confirm={`Delete ${f.name}? Its bytes are removed from storage.`}
        >
          <button type="submit" class="btn small danger">
            Delete
          </button>
        </ActionForm>
      </>
    ),
  },
];

const FilesPage: FC<{ items: FileRow[]; next: string | null; paged: boolean; csrf: string }> = (p) => (
  <>
    <h1>Files</h1>
    <DataTable
      rows={p.items}
      columns={fileColumns(p.csrf)}
      empty="No files yet."
      pager={{ base: `${P}/files`, next: p.next, paged: p.paged }}
    />
  </>
);

/** Mounted at `/admin/files`. */
export const files = new Hono<ConsoleEnv>();

files.get("/", async (c) => {
  const cursor = c.req.query("cursor");
  const res = await listAllFiles(c.get("db"), limitOf(), cursor && isId(cursor) ? cursor : null);
  return page(
    c,
    "Files",
    "files",
    <FilesPage items={res.rows} next={res.nextCursor} paged={cursor !== undefined} csrf={c.get("csrf")} />,
  );
});

files.get("/:id/content", async (c) => {
  const row = await getFile(c.get("db"), idParam(c));
  if (!row) throw new AppError("not_found", "No such file.");
  const res = await serveContent(c.env.MEDIA, row, c.req.raw, "private");
  c.set("fileContent", true);
  // A private file's bytes are the user's own: the admin's look at them is recorded.
  if (row.visibility === "private" && res.ok)
    await recordAudit(c.get("db"), actor(c), {
      action: "file.view",
      target: `file:${row.id}`,
      detail: { ownerId: row.ownerId, download: c.req.query("download") !== undefined },
    });
  // Only checked raster images show inline (thumbnails); everything else downloads.
  if (c.req.query("download") !== undefined || !isRaster(row.contentType))
    res.headers.set(
      "content-disposition",
      res.headers.get("content-disposition")?.replace(/^inline/, "attachment") ?? "attachment",
    );
  return res;
});

files.post("/:id/delete", async (c) => {
  const id = idParam(c);
  const ask = await unconfirmed(c, "Delete this file? Its bytes are removed from storage.", `${P}/files`);
  if (ask) return ask;
  const row = await getFile(c.get("db"), id);
  if (!row) throw new AppError("not_found", "No such file.");
  await deleteFile(c.env, c.get("db"), row, [
    auditStatement(c.get("db"), actor(c), {
      action: "file.delete",
      target: `file:${id}`,
      detail: { name: row.name, ownerId: row.ownerId },
    }),
  ]);
  return redirect(c, `${P}/files`, "file-deleted");
});

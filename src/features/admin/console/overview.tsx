/** The overview at `/admin`: counts that link to their lists, and the recent signups. */
import { Hono } from "hono";
import type { FC } from "hono/jsx";
import { overview as loadOverview, type Overview } from "../service";
import type { ConsoleEnv } from "./context";
import { page } from "./page";
import { DataTable } from "./table";
import { fmtBytes, P, Stat } from "./ui";
import { userColumns } from "./users";

const OverviewPage: FC<{ o: Overview }> = ({ o }) => (
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
      <DataTable rows={o.recent} columns={userColumns} empty="Nobody has signed up yet." />
    </section>
  </>
);

/** Mounted at `/admin`. */
export const overview = new Hono<ConsoleEnv>();

overview.get("/", async (c) => page(c, "Overview", "overview", <OverviewPage o={await loadOverview(c.get("db"))} />));

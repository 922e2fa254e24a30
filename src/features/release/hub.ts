/**
 * ConfigHub: the Durable Object holding `GET /v1/config/subscribe` sockets (spread over
 * `limits.configHubShards` objects by user). Each socket gets `{ type: "config", values, version }` on connect
 * and after every change, computed for its caller. See docs/release.md.
 */
import { limits } from "../../config";
import { primaryDb } from "../../db";
import { CLOSE_HEARTBEAT, CLOSE_SESSION_ENDED, type SocketAttachment, SocketObject } from "../../lib/sockets";
import type { EndedSessionsContext } from "../../lifecycle";
import { liveSessionsQuery, userRowQuery } from "../auth";
import { teamIdsOfQuery } from "../teams";
import type { ConfigValue } from "./define";
import { type Caller, fnv1a } from "./rules";
import { parseClient } from "./semver";
import { configSnapshot, forgetConfigCopy, type Snapshot } from "./store";
import { valuesFor } from "./values";

interface Attachment extends SocketAttachment {
  /** The caller as the upgrade described it (the account's role and teams as they were then). */
  client: string | null;
  country: string | null;
  installId: string | null;
  role: "user" | "admin" | null;
  teamIds: string[];
}

type ConfigFrame = { type: "config"; values: Record<string, ConfigValue>; version: number } | { type: "pong" };

/** The header in which the Worker tells the hub who is upgrading (it verified the token). */
export const CALLER_HEADER = "x-config-caller";
export type Upgrader = Pick<Attachment, "userId" | "sessionId" | "client" | "country" | "installId">;

/** The shard a user's sockets live on. */
const shardOf = (userId: string) => fnv1a(userId) % limits.configHubShards;

const shardStub = (env: Env, shard: number) => env.CONFIG_HUB.get(env.CONFIG_HUB.idFromName(`config/${shard}`));
export const configHubOf = (env: Env, userId: string) => shardStub(env, shardOf(userId));

/** Tells every shard the config changed (after the change committed). */
export async function announceConfigChange(env: Env): Promise<void> {
  const shards = Array.from({ length: limits.configHubShards }, (_, i) => shardStub(env, i).changed());
  const failed = (await Promise.allSettled(shards)).filter((r) => r.status === "rejected");
  if (failed.length) console.error(`config: ${failed.length} hubs missed a change`);
}

/** Closes the config sockets of ended sessions (a lifecycle `SessionSocketCloser`). */
export async function closeConfigSessionSockets({ env, userId, sessions }: EndedSessionsContext): Promise<void> {
  await configHubOf(env, userId).endSessions(userId, sessions);
}

export class ConfigHub extends SocketObject<Attachment, ConfigFrame> {
  /** The config changed: re-read it and send each open socket its values. */
  async changed(): Promise<void> {
    forgetConfigCopy();
    if (this.openSockets().length === 0) return;
    const snapshot = await configSnapshot(primaryDb(this.env.DB));
    for (const ws of this.openSockets()) this.sendConfig(ws, snapshot);
  }

  async endSessions(userId: string, sessions: string[] | "all"): Promise<number> {
    const sockets = this.endedSessionSockets(userId, sessions);
    for (const ws of sockets) this.drop(ws, CLOSE_SESSION_ENDED, "session ended");
    return sockets.length;
  }

  override async fetch(request: Request): Promise<Response> {
    const raw = request.headers.get(CALLER_HEADER);
    if (request.headers.get("upgrade") !== "websocket" || !raw) return new Response(null, { status: 400 });
    const who = JSON.parse(raw) as Upgrader;
    const { userId, sessionId } = who;
    const ended = this.sessionEnds.watch(userId, sessionId);
    const db = primaryDb(this.env.DB);
    let snapshot: Snapshot;
    let account: [{ id: string }[], { role: "user" | "admin" }[], { teamId: string }[]];
    try {
      // The session check and the account's role and teams: one round trip.
      [snapshot, account] = await Promise.all([
        configSnapshot(db),
        db.batch([liveSessionsQuery(db, [sessionId]), userRowQuery(db, userId), teamIdsOfQuery(db, userId)]),
      ]);
    } catch (e) {
      console.error("config: subscribe failed:", (e as Error).message);
      return new Response(null, { status: 503 });
    }
    if (account[0].length === 0 || ended()) return new Response(null, { status: 401 });
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.accept(server, {
      lastSeenAt: Date.now(),
      gone: false,
      ...who,
      role: account[1][0]?.role ?? null,
      teamIds: account[2].map((t) => t.teamId),
    });
    this.sendConfig(server, snapshot);
    if ((await this.ctx.storage.getAlarm()) === null)
      await this.ctx.storage.setAlarm(Date.now() + limits.configHeartbeatCheckSec * 1000);
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    if (!this.touch(ws)) return;
    // Any other frame is ignored: the protocol has no client frame but the ping.
    if (typeof data === "string" && data.includes('"ping"')) this.send(ws, { type: "pong" });
  }

  protected socketClosed(): void {}

  /** Heartbeat while sockets are open: closes silent ones, and those whose session ended unnoticed. */
  override async alarm(): Promise<void> {
    for (const ws of this.silentSockets(limits.configHeartbeatTimeoutSec * 1000))
      this.drop(ws, CLOSE_HEARTBEAT, "heartbeat timeout");
    const open = this.openSockets();
    const sessions = [...new Set(open.map((ws) => this.attachment(ws)!.sessionId))];
    try {
      const db = primaryDb(this.env.DB);
      const alive = new Set<string>();
      for (let i = 0; i < sessions.length; i += 90)
        for (const row of await liveSessionsQuery(db, sessions.slice(i, i + 90))) alive.add(row.id);
      for (const ws of open)
        if (!alive.has(this.attachment(ws)!.sessionId)) this.drop(ws, CLOSE_SESSION_ENDED, "session ended");
    } catch (e) {
      console.error("config: session re-check failed:", (e as Error).message);
    }
    if (this.openSockets().length > 0)
      await this.ctx.storage.setAlarm(Date.now() + limits.configHeartbeatCheckSec * 1000);
  }

  private sendConfig(ws: WebSocket, snapshot: Snapshot): void {
    const a = this.attachment(ws)!;
    const caller: Caller = {
      client: parseClient(a.client),
      country: a.country,
      userId: a.userId,
      installId: a.installId,
      role: a.role,
      teamIds: a.teamIds,
    };
    this.send(ws, { type: "config", values: valuesFor(snapshot, caller), version: snapshot.version });
  }
}

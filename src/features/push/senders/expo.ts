/**
 * Expo push service: `POST EXPO_PUSH_URL` with up to 100 messages per request; the answer holds
 * one ticket per message, in order. A ticket only says Expo accepted the message: whether APNs
 * or FCM then took it (or said the device is gone) is in the ticket's receipt, read later from
 * `getReceipts` next to the send URL. `EXPO_ACCESS_TOKEN` is sent when set (required only when
 * the Expo project enables enhanced push security).
 */
import { type Config, limits } from "../../../config";
import {
  genericOutcome,
  isOutcome,
  jsonOrNull,
  mapLimit,
  type Outcome,
  type PushMessage,
  type PushSender,
  pushFetch,
} from "./types";

/** Expo accepts at most 100 messages per request. */
const EXPO_BATCH = 100;

/** The Expo message for one token. */
function expoMessage(to: string, m: PushMessage) {
  return { to, title: m.title, body: m.body, data: m.data, sound: "default", priority: "high" };
}

function ticketOutcome(ticket: unknown): Outcome {
  const t = ticket as { status?: unknown; id?: unknown; details?: { error?: unknown } } | null;
  if (t?.status === "ok") return typeof t.id === "string" ? { status: "sent", ticket: t.id } : { status: "sent" };
  const code = typeof t?.details?.error === "string" ? t.details.error : "unknown";
  if (code === "DeviceNotRegistered") return { status: "dead", reason: "Expo DeviceNotRegistered" };
  if (code === "MessageRateExceeded") return { status: "retry", reason: "Expo MessageRateExceeded" };
  return { status: "failed", reason: `Expo ticket error ${code}` };
}

const headers = (cfg: Config["push"]["expo"]) => ({
  accept: "application/json",
  "content-type": "application/json; charset=utf-8",
  ...(cfg.accessToken ? { authorization: `Bearer ${cfg.accessToken}` } : {}),
});

/** Expo answers at most 1000 receipts per request. */
const RECEIPTS_BATCH = 1000;

/**
 * The tickets whose receipt says DeviceNotRegistered. Receipts not ready yet are simply absent.
 * Throws on a transient failure so the queue retries the check; a 4xx is logged and skipped.
 */
export async function expoDeadTickets(cfg: Config["push"]["expo"], ticketIds: readonly string[]): Promise<string[]> {
  const dead: string[] = [];
  for (let i = 0; i < ticketIds.length; i += RECEIPTS_BATCH) {
    const ids = ticketIds.slice(i, i + RECEIPTS_BATCH);
    const res = await pushFetch(cfg.receiptsUrl, {
      method: "POST",
      headers: headers(cfg),
      body: JSON.stringify({ ids }),
    });
    if (isOutcome(res)) throw new Error(`Expo receipts: ${res.reason}`);
    if (res.status === 429 || res.status >= 500) throw new Error(`Expo receipts answered ${res.status}`);
    const body = (await jsonOrNull(res)) as { data?: unknown } | null;
    if (!res.ok || typeof body?.data !== "object" || body.data === null) {
      console.error(`push: Expo receipts answered ${res.status}; ${ids.length} receipt(s) not checked`);
      continue;
    }
    for (const [id, r] of Object.entries(
      body.data as Record<string, { status?: unknown; details?: { error?: unknown } } | null>,
    )) {
      if (r?.status === "error" && r.details?.error === "DeviceNotRegistered") dead.push(id);
    }
  }
  return dead;
}

export function expoSender(cfg: Config["push"]["expo"]): PushSender {
  const sendChunk = async (tokens: string[], m: PushMessage): Promise<Outcome[]> => {
    const res = await pushFetch(cfg.pushUrl, {
      method: "POST",
      headers: headers(cfg),
      body: JSON.stringify(tokens.map((t) => expoMessage(t, m))),
    });
    if (isOutcome(res)) return tokens.map(() => res);
    const body = (await jsonOrNull(res)) as { data?: unknown; errors?: unknown } | null;
    if (!res.ok || !Array.isArray(body?.data) || body.data.length !== tokens.length) {
      const code = Array.isArray(body?.errors)
        ? String((body.errors[0] as { code?: unknown } | undefined)?.code ?? "")
        : "";
      const o = genericOutcome(res, `Expo answered ${res.status}${code ? ` ${code}` : ""}`);
      return tokens.map(() => o);
    }
    return body.data.map(ticketOutcome);
  };

  return {
    provider: "expo",
    async send(tokens, m) {
      const chunks: string[][] = [];
      for (let i = 0; i < tokens.length; i += EXPO_BATCH) chunks.push(tokens.slice(i, i + EXPO_BATCH));
      return (await mapLimit(chunks, limits.pushConcurrency, (c) => sendChunk(c, m))).flat();
    },
  };
}

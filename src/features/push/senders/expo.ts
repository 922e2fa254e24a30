/**
 * Expo push service: `POST EXPO_PUSH_URL` with up to 100 messages per request; the answer holds
 * one ticket per message, in order. `EXPO_ACCESS_TOKEN` is sent when set (required only when
 * the Expo project enables enhanced push security).
 */
import { type Config, limits } from "../../../config";
import { genericOutcome, isOutcome, jsonOrNull, mapLimit, type Outcome, type PushMessage, type PushSender, pushFetch } from "./types";

/** Expo accepts at most 100 messages per request. */
const EXPO_BATCH = 100;

/** The Expo message for one token. */
export function expoMessage(to: string, m: PushMessage) {
  return { to, title: m.title, body: m.body, data: m.data, sound: "default", priority: "high" };
}

function ticketOutcome(ticket: unknown): Outcome {
  const t = ticket as { status?: unknown; message?: unknown; details?: { error?: unknown } } | null;
  if (t?.status === "ok") return { status: "sent" };
  const code = typeof t?.details?.error === "string" ? t.details.error : "unknown";
  if (code === "DeviceNotRegistered") return { status: "dead", reason: "Expo DeviceNotRegistered" };
  if (code === "MessageRateExceeded") return { status: "retry", reason: "Expo MessageRateExceeded" };
  return { status: "failed", reason: `Expo ticket error ${code}` };
}

export function expoSender(cfg: Config["push"]["expo"]): PushSender {
  const sendChunk = async (tokens: string[], m: PushMessage): Promise<Outcome[]> => {
    const res = await pushFetch(cfg.pushUrl, {
      method: "POST",
      headers: {
        accept: "application/json",
        "content-type": "application/json; charset=utf-8",
        ...(cfg.accessToken ? { authorization: `Bearer ${cfg.accessToken}` } : {}),
      },
      body: JSON.stringify(tokens.map((t) => expoMessage(t, m))),
    });
    if (isOutcome(res)) return tokens.map(() => res);
    const body = (await jsonOrNull(res)) as { data?: unknown; errors?: unknown } | null;
    if (!res.ok || !Array.isArray(body?.data) || body.data.length !== tokens.length) {
      const code = Array.isArray(body?.errors) ? String((body.errors[0] as { code?: unknown } | undefined)?.code ?? "") : "";
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

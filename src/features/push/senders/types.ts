/** The one interface every push provider sits behind, and the HTTP helpers they share. */
import { limits } from "../../../config";

export type Provider = "fcm" | "apns" | "expo";

/** What is pushed. `data` values are strings because FCM's data map only carries strings. */
export interface PushMessage {
  title: string;
  body: string;
  data: Record<string, string>;
  /** Groups notifications on the device (APNs `thread-id`), e.g. the chat room id. */
  threadId?: string;
}

/**
 * The fate of one delivery:
 * - `sent`: the provider accepted it (`ticket`: Expo's ticket id, to check its receipt later);
 * - `dead`: the provider says the token will never work again: delete the device;
 * - `retry`: transient (5xx, 429, network, timeout): try again later, after `retryAfterSec` if given;
 * - `failed`: permanent but not the token's fault (bad credentials, payload rejected, provider not
 *   configured): logged and dropped, the device is kept.
 */
export type Outcome =
  | { status: "sent"; ticket?: string }
  | { status: "dead"; reason: string }
  | { status: "retry"; reason: string; retryAfterSec?: number }
  | { status: "failed"; reason: string };

export interface PushSender {
  readonly provider: Provider;
  /** Sends `message` to each token; returns one outcome per token, in the same order. Never throws. */
  send(tokens: string[], message: PushMessage): Promise<Outcome[]>;
}

/** A sender for a provider whose credentials are missing: nothing is sent, devices are kept. */
export const unconfigured = (provider: Provider, what: string): PushSender => ({
  provider,
  async send(tokens) {
    console.error(`push: ${provider} is not configured (${what}); ${tokens.length} notification(s) not sent`);
    return tokens.map(() => ({ status: "failed", reason: `${provider} not configured` }));
  },
});

/** `Retry-After` as seconds (delta-seconds or an HTTP date), or undefined. */
function retryAfter(res: Response): number | undefined {
  const h = res.headers.get("retry-after");
  if (!h) return undefined;
  if (/^\d+$/.test(h.trim())) return Number(h.trim());
  const at = Date.parse(h);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/** The outcome for an answer that is neither success nor a provider-specific case. */
export function genericOutcome(res: Response, reason: string): Outcome {
  if (res.status === 429 || res.status >= 500) {
    const after = retryAfter(res);
    return { status: "retry", reason, ...(after !== undefined ? { retryAfterSec: after } : {}) };
  }
  return { status: "failed", reason };
}

type Transient = Extract<Outcome, { status: "retry" }>;

/** fetch with the push timeout; a network error or timeout becomes a `retry` outcome instead of a throw. */
export async function pushFetch(url: string, init: RequestInit): Promise<Response | Transient> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(limits.pushHttpTimeoutMs) });
  } catch (e) {
    const name = e instanceof Error ? e.name : "";
    return {
      status: "retry",
      reason: name === "TimeoutError" ? "timeout" : `network error: ${e instanceof Error ? e.message : String(e)}`,
    };
  }
}

/** Reads a JSON body, or null when it is not JSON. */
export async function jsonOrNull(res: Response): Promise<unknown> {
  try {
    return await res.json();
  } catch {
    return null;
  }
}

/** Runs `fn` over `items` with at most `n` in flight, keeping order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  n: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

export const isOutcome = (x: Response | Transient): x is Transient => !(x instanceof Response);

/**
 * Expo push service stand-in: `POST /expo/push/send` with a JSON array (or one object) of up to
 * 100 messages and `Authorization: Bearer <access token>` (enhanced push security on). Answers
 * `{ data: [ticket, ...] }` in order, like exp.host. Tokens steer the answer:
 * `ExponentPushToken[dead-…]` → ticket error DeviceNotRegistered; `ExponentPushToken[flaky-…]`
 * → the whole request answers 503 the first time that token is seen; `ExponentPushToken[throttled-…]`
 * → ticket error MessageRateExceeded on the first try, then ok; `ExponentPushToken[gone-…]` → ticket
 * ok, but its receipt (`POST /expo/push/getReceipts` `{ ids }`) says DeviceNotRegistered, as when
 * APNs/FCM report the device only after Expo accepted the message.
 */
import { EXPO_TEST_ACCESS_TOKEN } from "./keys";
import type { Standin, StandinReply } from "./server";

const TOKEN = /^Expo(nent)?PushToken\[([^\]]+)\]$/;
const expoError = (status: number, code: string, message: string): StandinReply => ({
  status,
  body: { errors: [{ code, message }] },
});

export function expoStandin(): Standin {
  const tries = new Map<string, number>();
  const tickets = new Map<string, string>();
  let n = 0;
  return {
    prefix: "/expo",
    handle(req) {
      if (req.path !== "/expo/push/send" && req.path !== "/expo/push/getReceipts") return null;
      if (req.method !== "POST") return expoError(405, "METHOD_NOT_ALLOWED", "POST only");
      if (req.headers.authorization !== `Bearer ${EXPO_TEST_ACCESS_TOKEN}`)
        return expoError(401, "UNAUTHORIZED", "The bearer token is invalid.");
      if (req.path === "/expo/push/getReceipts") {
        let ids: unknown;
        try {
          ids = (JSON.parse(req.body) as { ids?: unknown }).ids;
        } catch {
          return expoError(400, "VALIDATION_ERROR", "The request body is not JSON.");
        }
        if (!Array.isArray(ids) || ids.length > 1000 || !ids.every((x) => typeof x === "string"))
          return expoError(400, "VALIDATION_ERROR", '"ids" must be up to 1000 ticket ids.');
        const data: Record<string, unknown> = {};
        for (const id of ids as string[]) {
          const to = tickets.get(id);
          if (!to) continue;
          data[id] = TOKEN.exec(to)![2]!.startsWith("gone-")
            ? {
                status: "error",
                message: `"${to}" is not a registered push notification recipient`,
                details: { error: "DeviceNotRegistered", expoPushToken: to },
              }
            : { status: "ok" };
        }
        return { status: 200, body: { data } };
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(req.body);
      } catch {
        return expoError(400, "VALIDATION_ERROR", "The request body is not JSON.");
      }
      const messages = (Array.isArray(parsed) ? parsed : [parsed]) as {
        to?: unknown;
        title?: unknown;
        body?: unknown;
      }[];
      if (messages.length > 100)
        return expoError(400, "PUSH_TOO_MANY_NOTIFICATIONS", "At most 100 messages per request.");
      for (const msg of messages) {
        if (typeof msg?.to !== "string" || !TOKEN.test(msg.to))
          return expoError(400, "VALIDATION_ERROR", `"to" must be an Expo push token.`);
      }
      const seen = messages.map((msg) => {
        const to = msg.to as string;
        const attempt = (tries.get(to) ?? 0) + 1;
        tries.set(to, attempt);
        return { to, inner: TOKEN.exec(to)![2]!, attempt };
      });
      if (seen.some((s) => s.inner.startsWith("flaky-") && s.attempt === 1))
        return expoError(503, "INTERNAL_SERVER_ERROR", "An unknown error occurred.");
      return {
        status: 200,
        body: {
          data: seen.map((s) => {
            if (s.inner.startsWith("dead-"))
              return {
                status: "error",
                message: `"${s.to}" is not a registered push notification recipient`,
                details: { error: "DeviceNotRegistered", expoPushToken: s.to },
              };
            if (s.inner.startsWith("throttled-") && s.attempt === 1)
              return {
                status: "error",
                message: "Too many messages to this device.",
                details: { error: "MessageRateExceeded" },
              };
            const id = `ticket-${++n}`;
            tickets.set(id, s.to);
            return { status: "ok", id };
          }),
        },
      };
    },
  };
}

/** Request and response schemas of the device and admin push routes (validation + OpenAPI). */
import * as v from "valibot";
import { limits } from "../../config";

const Platform = v.picklist(["ios", "android", "web"]);
const ProviderName = v.picklist(["fcm", "apns", "expo"]);

/** Each provider's token shape, loosely: enough to catch a token sent to the wrong provider. */
const TOKEN_SHAPES = {
  // APNs device tokens are hex (32 bytes today; Apple says not to hard-code the length).
  apns: /^[0-9a-fA-F]{32,200}$/,
  expo: /^Expo(nent)?PushToken\[[^\]\s]+\]$/,
  // FCM registration tokens are opaque; no whitespace or control characters.
  fcm: /^[\x21-\x7e]+$/,
} as const;

export const DeviceBody = v.pipe(
  v.strictObject({
    token: v.pipe(v.string(), v.minLength(1), v.maxLength(limits.pushTokenMax)),
    platform: Platform,
    provider: ProviderName,
  }),
  v.forward(
    v.check((b) => TOKEN_SHAPES[b.provider].test(b.token), "is not a token of this provider"),
    ["token"],
  ),
  v.forward(
    v.check(
      (b) => (b.provider === "apns" ? b.platform === "ios" : b.provider === "expo" ? b.platform !== "web" : true),
      "this provider does not deliver to this platform",
    ),
    ["platform"],
  ),
);
export type DeviceInput = v.InferOutput<typeof DeviceBody>;

export const DeviceSchema = v.object({
  id: v.string(),
  token: v.string(),
  platform: Platform,
  provider: ProviderName,
  createdAt: v.string(),
  updatedAt: v.string(),
});
export type Device = v.InferOutput<typeof DeviceSchema>;

export const DeviceList = v.object({ items: v.array(DeviceSchema), nextCursor: v.nullable(v.string()) });

/** Keys FCM reserves in its data map, and `aps`, which APNs reserves in its payload. */
const RESERVED_KEY = /^(aps|from|notification|message_type|collapse_key|google\..*|gcm\..*)$/i;

/** Custom data: string values (FCM's data map only carries strings), at most pushDataMaxBytes of JSON. */
const PushData = v.pipe(
  v.record(
    v.pipe(
      v.string(),
      v.regex(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/, "keys are 1 to 64 letters, digits, _ . -"),
      v.check((k) => !RESERVED_KEY.test(k), "this key is reserved by the push providers"),
    ),
    v.string(),
  ),
  v.check(
    (d) => new TextEncoder().encode(JSON.stringify(d)).byteLength <= limits.pushDataMaxBytes,
    `data may be at most ${limits.pushDataMaxBytes} bytes of JSON`,
  ),
);

export const AdminPushBody = v.strictObject({
  userIds: v.pipe(
    v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(64))),
    v.minLength(1, "name at least one user"),
    v.maxLength(limits.pushAdminUsersMax, `at most ${limits.pushAdminUsersMax} users per call`),
  ),
  title: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(limits.pushTitleMax)),
  body: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(limits.pushBodyMax)),
  data: v.optional(PushData),
});

export const AdminPushAccepted = v.object({ status: v.literal("queued"), userCount: v.number() });

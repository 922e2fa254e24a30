/** `/v1/devices` (the caller's push tokens) and `/v1/admin/push` (service key: push to users). */
import { Hono } from "hono";
import * as v from "valibot";
import { limits } from "../../config";
import type { AppEnv } from "../../env";
import { AppError } from "../../errors";
import { cursorParam, describe, IdParam, limitParam, validate } from "../../lib/validation";
import { idempotency } from "../../middleware/idempotency";
import { requireUser, userOf } from "../auth";
import { DeviceBody, DeviceList, DeviceSchema } from "./schemas";
import { deleteDevice, listDevices, registerDevice } from "./service";

const ListQuery = v.strictObject({ limit: limitParam(limits.listDefault, limits.listMax), cursor: cursorParam });

export const deviceRoutes = new Hono<AppEnv>()
  .post(
    "/",
    describe({
      tag: "Push",
      summary: "Register this device's push token",
      description:
        "Registering a token that is already known (to any account) moves it to the caller and answers 200: a " +
        "phone that changes hands stops getting the previous owner's notifications. Each account keeps its most " +
        "recently registered devices; the oldest beyond the limit are dropped.",
      responses: {
        201: { description: "New device", schema: DeviceSchema },
        200: { description: "Known token, now the caller's", schema: DeviceSchema },
      },
    }),
    requireUser,
    idempotency,
    validate("json", DeviceBody),
    async (c) => {
      const { device, created } = await registerDevice(c.get("db"), userOf(c).userId, c.req.valid("json"));
      return c.json(device, created ? 201 : 200);
    },
  )
  .get(
    "/",
    describe({
      tag: "Push",
      summary: "The caller's devices, most recently registered first",
      responses: { 200: { description: "Devices", schema: DeviceList } },
    }),
    requireUser,
    validate("query", ListQuery),
    async (c) => {
      const q = c.req.valid("query");
      return c.json(await listDevices(c.get("db"), userOf(c).userId, q.limit, q.cursor));
    },
  )
  .delete(
    "/:id",
    describe({
      tag: "Push",
      summary: "Unregister one of the caller's devices",
      responses: { 204: { description: "Deleted" }, 404: { description: "No such device of the caller" } },
    }),
    requireUser,
    validate("param", IdParam),
    async (c) => {
      if (!(await deleteDevice(c.get("db"), userOf(c).userId, c.req.valid("param").id)))
        throw new AppError("not_found", "No such device.");
      return c.body(null, 204);
    },
  );

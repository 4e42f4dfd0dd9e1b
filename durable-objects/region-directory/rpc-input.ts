/**
 * Shapes of the RPC arguments the edge Worker passes. The Worker has
 * authenticated the caller, but the object still validates every argument
 * (a bug in one caller must not corrupt a region's state); the schemas are
 * the WebSocket message schemas of src/core/messages.ts minus their
 * envelope, so both entrances accept exactly the same values.
 */
import * as v from "valibot";
import {
  addressListSchema,
  capacitySchema,
  findNodeMessage,
  findProvidersBatchMessage,
  findProvidersMessage,
  hostIdSchema,
  nodeIdSchema,
  pinMessage,
  placeMessage,
  regionSchema,
  roleListSchema,
  signalMessage,
} from "../../src/core/messages.js";

const nonNegInt = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER));

export const registerInput = v.object({
  nodeId: nodeIdSchema,
  publicKey: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
  hostId: hostIdSchema,
  addresses: addressListSchema,
  roles: roleListSchema,
  capacity: capacitySchema,
  certificateExpiresAtMs: nonNegInt,
});

export const regionInput = regionSchema;
export const nodeIdInput = nodeIdSchema;
export const findNodeInput = v.omit(findNodeMessage, ["type", "id"]);
export const findProvidersInput = v.omit(findProvidersMessage, ["type", "id"]);
export const findProvidersBatchInput = v.omit(findProvidersBatchMessage, ["type", "id"]);
export const renewedInput = v.object({ nodeId: nodeIdSchema, certificateExpiresAtMs: nonNegInt });
export const pinInput = v.object({ ...v.omit(pinMessage, ["type", "id"]).entries, nodeId: nodeIdSchema });
export const placeInput = v.omit(placeMessage, ["type", "id"]);
export const signalInput = v.object({ ...v.omit(signalMessage, ["type", "id", "region"]).entries, from: nodeIdSchema, fromRegion: regionSchema });
export const egressInput = nonNegInt;

export const drainInput = v.object({ nodeId: nodeIdSchema, draining: v.boolean() });

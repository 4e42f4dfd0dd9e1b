/**
 * Validation of what the region directory sends a peer (the
 * `DirectoryToPeer` union of src/core/messages.ts). The directory is trusted
 * but its socket is still input: a proxy, a version skew or a bug must
 * produce a warning, never a crash or a half-typed object in the daemon.
 * Unknown fields are tolerated (a newer directory may add some); unknown
 * message types and malformed ones are rejected.
 */
import * as v from "valibot";
import {
  MAX_ADDRESSES,
  MAX_PROVIDER_BATCH_CIDS,
  PONG,
  addressSchema,
  cidSchema,
  drainProgressSchema,
  loadSchema,
  nodeIdSchema,
  repairJobIdSchema,
  auditJobIdSchema,
  auditNonceSchema,
  MAX_AUDIT_RANGE_BYTES,
  type DirectoryToPeer,
} from "../core/messages.js";

/** Largest directory message a peer reads (a 100-provider answer is ~60 KB). */
export const MAX_INBOUND_MESSAGE_BYTES = 1024 * 1024;

const id = v.pipe(v.string(), v.minLength(1), v.maxLength(64));
const shortText = v.pipe(v.string(), v.maxLength(200));
const positiveMs = v.pipe(v.number(), v.integer(), v.minValue(1));

const peerInfoEntries = {
  nodeId: nodeIdSchema,
  hostId: shortText,
  region: shortText,
  addresses: v.pipe(v.array(shortText), v.maxLength(64)),
  roles: v.pipe(v.array(shortText), v.maxLength(16)),
  state: v.picklist(["alive", "suspect", "dead"]),
};
const peerInfo = v.object(peerInfoEntries);
const providerInfo = v.object({ ...peerInfoEntries, load: v.nullable(loadSchema), freeBytes: v.nullable(v.pipe(v.number(), v.minValue(0))) });

export const directoryToPeerSchema = v.variant("type", [
  v.object({ type: v.literal("welcome"), nodeId: nodeIdSchema, region: shortText, heartbeatIntervalMs: positiveMs, statusIntervalMs: positiveMs, serverTimeMs: v.number() }),
  v.object({ type: v.literal("nodes"), id, nodes: v.pipe(v.array(peerInfo), v.maxLength(1000)) }),
  v.object({ type: v.literal("providers"), id, cid: shortText, providers: v.pipe(v.array(providerInfo), v.maxLength(1000)) }),
  // A batched answer: at most one key per CID a batch may ask for.
  v.object({
    type: v.literal("providers_batch"),
    id,
    providers: v.pipe(
      v.record(shortText, v.pipe(v.array(providerInfo), v.maxLength(1000))),
      v.check((r) => Object.keys(r).length <= MAX_PROVIDER_BATCH_CIDS, "too many CIDs"),
    ),
  }),
  v.object({ type: v.literal("ack"), id }),
  v.object({ type: v.literal("signal"), from: nodeIdSchema, fromRegion: shortText, payload: v.unknown() }),
  // A repair job: the addresses are dialled, so they are held to the strict address syntax, not just short text.
  v.object({
    type: v.literal("repair"),
    jobId: repairJobIdSchema,
    cid: cidSchema,
    sizeBytes: v.nullable(v.pipe(v.number(), v.integer(), v.minValue(0))),
    source: v.variant("kind", [
      v.object({ kind: v.literal("peer"), nodeId: nodeIdSchema, addresses: v.pipe(v.array(addressSchema), v.minLength(1), v.maxLength(MAX_ADDRESSES)) }),
      v.object({ kind: v.literal("r2") }),
    ]),
    timeoutMs: positiveMs,
  }),
  v.object({ type: v.literal("drain_status"), id, progress: drainProgressSchema }),
  // Trims name chunks to delete: held to the strict CID syntax, and bounded like an announcement.
  v.object({ type: v.literal("trim"), cids: v.pipe(v.array(cidSchema), v.minLength(1), v.maxLength(1000)) }),
  v.object({ type: v.literal("release"), cids: v.pipe(v.array(cidSchema), v.minLength(1), v.maxLength(1000)) }),
  // An audit: bounded range, so a hostile frame cannot make the peer hash more than MAX_AUDIT_RANGE_BYTES.
  v.object({
    type: v.literal("audit"),
    jobId: auditJobIdSchema,
    cid: cidSchema,
    nonce: auditNonceSchema,
    offset: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER)),
    length: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(MAX_AUDIT_RANGE_BYTES)),
    timeoutMs: positiveMs,
  }),
  v.object({ type: v.literal("error"), id: v.optional(id), code: v.pipe(v.string(), v.maxLength(64)), message: v.pipe(v.string(), v.maxLength(2000)) }),
]);

// The schema must describe the protocol type exactly, so a change to one fails compilation of the other.
type Inbound = v.InferOutput<typeof directoryToPeerSchema>;
const sameShape: [Inbound] extends [DirectoryToPeer] ? ([DirectoryToPeer] extends [Inbound] ? true : false) : false = true;
void sameShape;

export type InboundFrame = { kind: "pong" } | { kind: "message"; message: DirectoryToPeer } | { kind: "invalid"; reason: string };

/** Classifies one text frame from the directory. Never throws. */
export function parseInbound(data: string): InboundFrame {
  if (data === PONG) return { kind: "pong" };
  if (data.length > MAX_INBOUND_MESSAGE_BYTES) return { kind: "invalid", reason: `message of ${data.length} characters is too large` };
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    return { kind: "invalid", reason: "message is not JSON" };
  }
  const result = v.safeParse(directoryToPeerSchema, raw);
  if (!result.success) {
    const issue = result.issues[0];
    const path = issue.path?.map((p) => String(p.key)).join(".") ?? "";
    return { kind: "invalid", reason: `message${path ? `.${path}` : ""}: ${issue.message}` };
  }
  return { kind: "message", message: result.output as DirectoryToPeer };
}

/**
 * The messages peers and the edge say to each other, as one discriminated
 * union per direction, each validated with valibot at every boundary (the
 * region directory on receipt, the peer on receipt). Senders check their
 * literals with `satisfies PeerToDirectory` / `satisfies DirectoryToPeer`.
 *
 * Transport: one WebSocket per peer to its region directory, JSON text
 * frames. The literal text "ping" is answered "pong" by the runtime without
 * waking the Durable Object (hibernation auto-response); everything else
 * here is a real message. Requests carry an `id` chosen by the sender and
 * are answered by a message with the same `id`.
 */
import * as v from "valibot";
import { CID_STRING_LENGTH } from "./cid.js";
import { ROLES } from "./roles.js";
import { REGION_NAME_RE } from "./region-map.js";

export const PING = "ping";
export const PONG = "pong";
/** Close code from the directory: this socket was replaced by the same peer's newer connection (do not reconnect from this one). */
export const CLOSE_REPLACED = 4000;
/**
 * Close code from a peer that is shutting down on purpose. The directory
 * stops offering it as a provider at once instead of after the suspect
 * timeout (its replicas still count until the dead timeout, so a restart
 * costs no repair); a dropped socket, a deploy or a crash closes otherwise.
 */
export const CLOSE_LEAVING = 4001;
/** Largest WebSocket text frame the directory accepts. */
export const MAX_MESSAGE_CHARS = 128 * 1024;
/** Largest signaling payload (canonical JSON), enough for SDP/candidates or a connect-back request. */
export const MAX_SIGNAL_PAYLOAD_CHARS = 4096;
export const MAX_ADDRESSES = 8;

const cid = v.pipe(v.string(), v.length(CID_STRING_LENGTH), v.regex(/^b[a-z2-7]+$/, "not a CIDv1 base32 string"));
export const cidSchema = cid;
export const nodeIdSchema = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, "must be 64 lower-case hex characters"));
const requestId = v.pipe(v.string(), v.minLength(1), v.maxLength(64));
const count = (max: number) => v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(max)));
const nonNegInt = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER));
export const regionSchema = v.pipe(v.string(), v.regex(REGION_NAME_RE, "must be a region name ([a-z][a-z0-9-]{0,31})"));
export const roleListSchema = v.pipe(
  v.array(v.picklist(ROLES)),
  v.minLength(1),
  v.maxLength(ROLES.length),
  v.check((r) => new Set(r).size === r.length, "roles must not repeat"),
);

/** A transfer endpoint, e.g. "http://203.0.113.7:7070" or "udx://[2001:db8::1]:7071". */
export const addressSchema = v.pipe(
  v.string(),
  v.maxLength(200),
  v.regex(/^(https?|tcp|udp|udx):\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "must be scheme://host:port with scheme http, https, tcp, udp or udx"),
);
export const addressListSchema = v.pipe(v.array(addressSchema), v.maxLength(MAX_ADDRESSES));

export const capacitySchema = v.object({
  storageBytes: nonNegInt,
  uploadBps: nonNegInt,
  downloadBps: nonNegInt,
});
export type Capacity = v.InferOutput<typeof capacitySchema>;

export const loadSchema = v.object({
  activeTransfers: nonNegInt,
  queueLength: nonNegInt,
  /** 0..1 share of the host's CPU in use. */
  cpu: v.pipe(v.number(), v.minValue(0), v.maxValue(1)),
});
export type Load = v.InferOutput<typeof loadSchema>;

// ---- peer → directory -------------------------------------------------------

/** Most regions one status report may describe. */
export const MAX_REGION_QUALITY_ENTRIES = 32;
const measure = v.nullable(v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(1e12)));
/**
 * What a peer measured of the sources it downloaded from, per source region
 * (moving averages, src/peer/region-quality.ts): round trip and delivery
 * rate. The directory folds them into its estimates of the quality between
 * its region and each other one (durable-objects/region-directory/region-quality.ts).
 */
export const regionQualitySchema = v.pipe(
  v.array(v.object({ region: regionSchema, rttMs: measure, rateBytesPerSecond: measure, samples: v.pipe(nonNegInt, v.minValue(1)) })),
  v.maxLength(MAX_REGION_QUALITY_ENTRIES),
);
export type RegionQualityReport = v.InferOutput<typeof regionQualitySchema>;

export const statusMessage = v.object({
  type: v.literal("status"),
  load: loadSchema,
  freeBytes: nonNegInt,
  capacity: v.optional(capacitySchema),
  addresses: v.optional(addressListSchema),
  regionQuality: v.optional(regionQualitySchema),
});

/**
 * Full-inventory sync (optional, so older peers still parse): after each
 * (re)connect a peer sends its whole inventory as `added` batches sharing
 * one `epoch` (a fresh id per sync), the last with `done: true`. The
 * directory stamps the rows as they arrive and, on `done`, forgets the
 * peer's rows not stamped with that epoch (mark and sweep), so chunks
 * deleted while the peer was offline stop being listed, and no live count
 * drops in between.
 */
export const announceSyncSchema = v.object({
  epoch: v.pipe(v.string(), v.minLength(1), v.maxLength(64)),
  done: v.boolean(),
});

export const announceMessage = v.object({
  type: v.literal("announce"),
  id: v.optional(requestId),
  added: v.pipe(v.array(cid), v.maxLength(1000)),
  removed: v.pipe(v.array(cid), v.maxLength(1000)),
  sync: v.optional(announceSyncSchema),
});

/** Most CIDs in one batched provider lookup (WebSocket `find_providers` with `cids`, HTTP POST …/providers). */
export const MAX_PROVIDER_BATCH_CIDS = 256;
/**
 * Most provider entries in one batched answer. Each CID gets at most
 * batchProviderCount() of them, so a full batch (256 CIDs, 8 each, a few
 * hundred bytes per entry) stays far below the 1 MiB WebSocket frame a
 * peer reads.
 */
export const MAX_BATCH_PROVIDER_ENTRIES = 2048;

/** Providers per CID in a batched answer for `distinctCids` CIDs when `count` were asked (never below 1). */
export function batchProviderCount(count: number, distinctCids: number): number {
  return Math.max(1, Math.min(count, Math.floor(MAX_BATCH_PROVIDER_ENTRIES / Math.max(1, distinctCids))));
}

export const findNodeMessage = v.object({ type: v.literal("find_node"), id: requestId, target: nodeIdSchema, count: count(100) });
export const findProvidersMessage = v.object({ type: v.literal("find_providers"), id: requestId, cid, count: count(100) });
/** The batched form of `find_providers` (same type, `cids` instead of `cid`), answered by `providers_batch`. */
export const findProvidersBatchMessage = v.object({
  type: v.literal("find_providers"),
  id: requestId,
  cids: v.pipe(v.array(cid), v.minLength(1), v.maxLength(MAX_PROVIDER_BATCH_CIDS)),
  count: count(100),
});

export const pinMessage = v.object({
  type: v.literal("pin"),
  id: requestId,
  cids: v.pipe(v.array(cid), v.minLength(1), v.maxLength(1000)),
  /** This publisher's target replication factor; 0 withdraws its own pin (others' pins stay). */
  replicas: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(16)),
  sizeBytes: v.optional(v.pipe(v.array(nonNegInt), v.maxLength(1000))),
});

export const signalMessage = v.object({
  type: v.literal("signal"),
  id: requestId,
  to: nodeIdSchema,
  /** Region of the recipient when it differs from the sender's. */
  region: v.optional(regionSchema),
  payload: v.pipe(
    v.unknown(),
    v.check((p) => p !== undefined && JSON.stringify(p).length <= MAX_SIGNAL_PAYLOAD_CHARS, `payload must be JSON of at most ${MAX_SIGNAL_PAYLOAD_CHARS} characters`),
  ),
});

/** Where should `count` new replicas go? Answered with `nodes`: live service peers on distinct hosts, best first. */
export const placeMessage = v.object({
  type: v.literal("place"),
  id: requestId,
  count: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(16)),
  /** Peers that must not be chosen (the asker, current holders). */
  exclude: v.optional(v.pipe(v.array(nodeIdSchema), v.maxLength(64))),
  sizeBytes: v.optional(nonNegInt),
});

/** A repair job's id, chosen by the directory (`r<sequence>`). */
export const repairJobIdSchema = v.pipe(v.string(), v.regex(/^r[0-9]{1,15}$/, "must be a repair job id (r<digits>)"));

/** Why a repair job failed at its target, so the directory knows what to avoid on the next attempt. */
export const REPAIR_FAILURE_CODES = [
  /** The source peer could not be reached, refused, or timed out. */
  "source_unreachable",
  /** The source (peer or R2) does not have the chunk. */
  "source_missing",
  /** The bytes from the source do not hash to the CID. */
  "corrupt",
  /** The target could not store the chunk (full, disk error). */
  "store_failed",
  /** The target already runs as many repair jobs as it takes (params.repairJobsPerPeer). */
  "busy",
  /** Anything else (a bug, a shutdown). */
  "failed",
] as const;
export type RepairFailureCode = (typeof REPAIR_FAILURE_CODES)[number];

/**
 * The outcome of a `repair` job at its target. `ok: true` is sent once the
 * chunk is stored, pinned and its announcement acknowledged, so the
 * directory finds the replica already recorded; the announcement alone
 * confirms the job too (a result lost with a dropped socket costs nothing).
 */
export const repairDoneMessage = v.object({ type: v.literal("repair_result"), jobId: repairJobIdSchema, cid, ok: v.literal(true), sizeBytes: nonNegInt });
export const repairFailedMessage = v.object({
  type: v.literal("repair_result"),
  jobId: repairJobIdSchema,
  cid,
  ok: v.literal(false),
  code: v.picklist(REPAIR_FAILURE_CODES),
  message: v.pipe(v.string(), v.maxLength(500)),
});

/**
 * Drain (issue 6 item 4): `draining: true` tells the directory this storage
 * peer is leaving for good. Its replicas stop counting toward their chunks'
 * targets (so repair copies them elsewhere, with this peer as a source), it
 * receives no new replicas, and its copies become trimmable once others
 * hold enough. `draining: false` cancels. Persisted, so it survives the
 * directory's restarts and the peer's reconnects. Answered by
 * `drain_status`; `draining` omitted only asks for the progress.
 */
export const drainMessage = v.object({ type: v.literal("drain"), id: requestId, draining: v.optional(v.boolean()) });

/** Where a peer's drain stands (`drain_status`, and the HTTP drain routes). */
export const drainProgressSchema = v.object({
  nodeId: nodeIdSchema,
  draining: v.boolean(),
  /** Pinned chunks this peer still holds, and their sealed bytes. */
  heldChunks: nonNegInt,
  heldBytes: nonNegInt,
  /** Of those, the chunks with fewer live replicas on other (non-draining) peers than their target. */
  remainingChunks: nonNegInt,
  remainingBytes: nonNegInt,
  /** Repair jobs copying this peer's chunks elsewhere right now (any source). */
  repairsRunning: nonNegInt,
  /** Draining and nothing left: shutting this peer down loses no replica below its target. */
  done: v.boolean(),
});
export type DrainProgress = v.InferOutput<typeof drainProgressSchema>;

/** An audit's id, chosen by the directory (`a<sequence>`); every holder challenged in one round gets the same id and nonce. */
export const auditJobIdSchema = v.pipe(v.string(), v.regex(/^a[0-9]{1,15}$/, "must be an audit id (a<digits>)"));
/** An audit nonce: AUDIT_NONCE_BYTES (16) random bytes in lower-case hex. */
export const auditNonceSchema = v.pipe(v.string(), v.regex(/^[0-9a-f]{32}$/, "must be 32 lower-case hex characters"));
/** Largest range one audit asks a holder to hash. */
export const MAX_AUDIT_RANGE_BYTES = 1024 * 1024;

/** Why a holder cannot prove it holds an audited chunk. */
export const AUDIT_FAILURE_CODES = [
  /** The holder does not have the chunk (any more). */
  "missing",
  /** The holder re-hashed its copy, found it did not match the CID, and removed it. */
  "corrupt",
  /** Anything else (a disk error, a shutdown). */
  "failed",
] as const;
export type AuditFailureCode = (typeof AUDIT_FAILURE_CODES)[number];

/**
 * The answer to `audit` (src/core/audit.ts): `proof` = hex SHA-256(nonce ‖
 * chunk[offset, offset + length)), the range clamped to the chunk; or a
 * failure. Either way a holder that cannot prove possession loses the
 * replica; a proof that disagrees with the other holders' does too.
 */
export const auditPassedMessage = v.object({
  type: v.literal("audit_result"),
  jobId: auditJobIdSchema,
  cid,
  ok: v.literal(true),
  proof: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, "must be a hex SHA-256")),
});
export const auditFailedMessage = v.object({
  type: v.literal("audit_result"),
  jobId: auditJobIdSchema,
  cid,
  ok: v.literal(false),
  code: v.picklist(AUDIT_FAILURE_CODES),
  message: v.pipe(v.string(), v.maxLength(500)),
});

// Two options share "find_providers", two "repair_result" and two "audit_result": valibot tries each and keeps the one that parses.
export const peerToDirectory = v.variant("type", [
  statusMessage,
  announceMessage,
  findNodeMessage,
  findProvidersMessage,
  findProvidersBatchMessage,
  pinMessage,
  signalMessage,
  placeMessage,
  repairDoneMessage,
  repairFailedMessage,
  drainMessage,
  auditPassedMessage,
  auditFailedMessage,
]);
export type PeerToDirectory = v.InferOutput<typeof peerToDirectory>;

// ---- directory → peer -------------------------------------------------------

export type PeerState = "alive" | "suspect" | "dead";

export const hostIdSchema = v.pipe(v.string(), v.regex(/^[A-Za-z0-9._-]{1,64}$/, "must be 1–64 characters of [A-Za-z0-9._-]"));

export interface PeerInfo {
  nodeId: string;
  /** Peers with one hostId share a failure domain: replicas of one chunk never share a host. */
  hostId: string;
  region: string;
  addresses: string[];
  roles: string[];
  state: PeerState;
}

export interface ProviderInfo extends PeerInfo {
  load: Load | null;
  freeBytes: number | null;
}

export type DirectoryToPeer =
  | { type: "welcome"; nodeId: string; region: string; heartbeatIntervalMs: number; statusIntervalMs: number; serverTimeMs: number }
  | { type: "nodes"; id: string; nodes: PeerInfo[] }
  | { type: "providers"; id: string; cid: string; providers: ProviderInfo[] }
  /** The answer to a batched `find_providers`: every asked CID is a key (an empty list when nobody holds it). */
  | { type: "providers_batch"; id: string; providers: Record<string, ProviderInfo[]> }
  | { type: "ack"; id: string }
  | { type: "signal"; from: string; fromRegion: string; payload: unknown }
  /**
   * A repair job for the receiving peer (the target): copy chunk `cid` from
   * `source` — another peer's transfer server, or R2 through the edge —
   * verify it against the CID, store and pin it, announce it, and answer
   * `repair_result` within `timeoutMs`.
   */
  | { type: "repair"; jobId: string; cid: string; sizeBytes: number | null; source: RepairSource; timeoutMs: number }
  /** The answer to `drain`: this peer's drain progress. */
  | { type: "drain_status"; id: string; progress: DrainProgress }
  /**
   * Trim (issue 6 item 5): these chunks have more live replicas than their
   * target and this holder was picked as surplus. The peer deletes them from
   * its store (the removal is announced like any other); it may ignore
   * chunks it no longer has.
   */
  | { type: "trim"; cids: string[] }
  /**
   * Release: nobody pins these chunks any more (their last pin was
   * withdrawn). The peer unpins them, so they become evictable cache; it
   * keeps serving them while they stay. Chunks it does not hold are ignored.
   */
  | { type: "release"; cids: string[] }
  /**
   * Audit (issue 6 item 7): prove within `timeoutMs` that this peer still
   * holds `cid` by answering `audit_result` with hex SHA-256(nonce ‖
   * chunk[offset, offset + length)), the range clamped to the chunk.
   */
  | { type: "audit"; jobId: string; cid: string; nonce: string; offset: number; length: number; timeoutMs: number }
  | { type: "error"; id?: string; code: string; message: string };

/** Where a repair job copies from: a live holder (its node ID and transfer addresses) or the R2 cold store. */
export type RepairSource = { kind: "peer"; nodeId: string; addresses: string[] } | { kind: "r2" };

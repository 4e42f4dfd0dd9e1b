/**
 * `put`: stores a file or a directory tree and returns its link.
 *
 * Order of work (architecture.md "Put and get"):
 *  1. scan the input (input-tree.ts) — totals for progress, skipped entries;
 *  2. ask the directory once where the `replicas - 1` other copies go
 *     (`place`, distinct hosts; fewer peers → fewer targets, reported
 *     honestly in `replicasAchieved`); with `minRegions` > 1, the home
 *     directory for its share and each chosen other region's directory
 *     for that region's (region-spread.ts);
 *  3. every file through ingest-file.ts (chunk → seal → local store,
 *     pinned), each chunk queued to the replicator (replicator.ts) at once,
 *     so pushes to peers and R2 overlap with chunking;
 *  4. manifests bottom-up (a directory's children before it; big chunk lists
 *     as pages), sealed with random keys and stored and replicated like
 *     chunks;
 *  5. wait for the pushes; replace targets that failed, once;
 *  6. pin everything at the directory with the target replica count (each
 *     region's directory with its share) — last, so the directory's repair
 *     does not race the pushes still running.
 *
 * Dedup accounting, for the "change 1% of a 256 MiB file" demonstration:
 * `newChunks`/`storedBytes` count chunks the local store did not hold
 * before, `sentBytes` the bytes actually sent to peers and R2 (a re-put
 * skips chunks a target reports holding). Manifests are always new (they
 * carry a creation time and a random key); their bytes are in
 * `storedBytes`/`sentBytes` and separately in `manifestBytes`.
 */
import { toBase64Url } from "../core/bytes.js";
import type { ChunkerOptions } from "../core/chunker.js";
import { ValidationError } from "../core/errors.js";
import { formatLink } from "../core/link.js";
import {
  buildFileManifest,
  MAX_INLINE_CHUNKS_PER_ENTRY,
  randomManifestKey,
  sealManifest,
  type DirectoryEntry,
  type DirectoryManifest,
  type FileManifest,
  type InlineFileEntry,
  type Manifest,
  type ManifestRef,
} from "../core/manifest.js";
import { DEFAULT_PARAMS } from "../core/params.js";
import { otherRegionsOnce, planRegions, validatePolicy, type OtherRegions, type RegionShare } from "./region-spread.js";
import { pinInRegion, type SharedNeeds } from "./pin-ledger.js";
import type { ChunkStore } from "./chunk-store.js";
import { ingestFile, type FileIngestContext, type IngestedFile } from "./ingest-file.js";
import { scanInput, type InputDirectory, type InputFile } from "./input-tree.js";
import { nodeChunkCipher } from "./native-chunk-cipher.js";
import type { ProgressCallback, ProgressPhase } from "./progress.js";
import { Replicator } from "./replicator.js";
import type { Announcer, ColdStore, ReplicaTarget, ReplicaTargets } from "./sources.js";

export interface PutOptions {
  /** Target copies including this peer's. Default DEFAULT_PARAMS.defaultReplicationFactor (3). */
  replicas?: number;
  /** Regions the copies must span (default 1: the home region only); needs deps.targets with other regions. */
  minRegions?: number;
  /** Also upload every chunk and manifest to the R2 cold store (needs deps.cold). */
  cold?: boolean;
  /** Random per-file keys instead of convergent ones (no dedup). */
  private?: boolean;
  /** Name recorded for the root (default: the path's base name). */
  name?: string;
  /** Edge origin for an https link; default a peercloud:// link. */
  edgeUrl?: string;
  /** Concurrent pushes/uploads. Default 8. */
  pushConcurrency?: number;
  chunker?: ChunkerOptions;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  /** Skipped inputs and failed replicas, one line each. */
  onWarning?: (message: string) => void;
  /** Clock for createdAtMs. Default Date.now. */
  now?: () => number;
}

export interface PutDeps {
  store: ChunkStore;
  /** The publisher's secret for convergent keys (config.json). */
  convergenceSecret: Uint8Array;
  /** Placement and pins at the region directory; absent = local only. */
  targets?: ReplicaTargets;
  cold?: ColdStore;
  announcer?: Announcer;
  /** What other content this home keeps pinned needs of these chunks (pin-ledger.ts), so shared chunks are never pinned lower; absent: nothing else. */
  pinNeeds?: (cids: ReadonlySet<string>, rootCid: string, otherRegions: OtherRegions) => Promise<SharedNeeds>;
}

export interface PutResult {
  link: string;
  /** CID of the root manifest. */
  cid: string;
  /** Plaintext bytes stored. */
  bytes: number;
  files: number;
  /** Data chunks (each occurrence), and those the local store did not hold yet. */
  chunks: number;
  newChunks: number;
  /** Sealed bytes newly written to the local store (data chunks and manifests). */
  storedBytes: number;
  /** Sealed bytes sent to replica peers and R2. */
  sentBytes: number;
  manifestBytes: number;
  /** Copies of every chunk that now exist (this peer + complete targets). */
  replicasAchieved: number;
  replicaPeers: string[];
  /** Per region of the policy, home (region null) first: the replicas its directory keeps, and the copies there now. */
  regions: { region: string | null; replicas: number; achieved: number }[];
  coldChunks: number;
  warnings: string[];
}

export async function putPath(path: string, options: PutOptions, deps: PutDeps): Promise<PutResult> {
  const policy = validatePolicy(options.replicas ?? DEFAULT_PARAMS.defaultReplicationFactor, options.minRegions);
  const replicas = policy.replicas;
  if (policy.minRegions > 1 && !deps.targets) throw new ValidationError("min-regions needs the region directories, which this put cannot reach", "min_regions_unavailable");
  if (options.cold && !deps.cold) throw new ValidationError("--cold needs the edge's cold store, which is not configured", "cold_unavailable");
  const now = options.now ?? Date.now;
  const warn = (message: string) => {
    warnings.push(message);
    options.onWarning?.(message);
  };
  const warnings: string[] = [];

  const scan = await scanInput(path, options.name);
  for (const w of scan.warnings) warn(w);
  const bytesTotal = scan.root.sizeBytes;
  const counters = { bytesDone: 0, chunks: 0, newChunks: 0, storedBytes: 0, manifestBytes: 0 };
  let phase: ProgressPhase = "scan";
  let sendTotalBytes = 0;
  const progress = (next: ProgressPhase, done = counters.bytesDone, total = bytesTotal) => {
    phase = next;
    options.onProgress?.({ op: "put", phase, bytesDone: done, bytesTotal: total, chunksDone: counters.chunks, chunksTotal: counters.chunks });
  };
  progress("scan");

  // Home first: the publisher's own copy is one of the home region's share.
  const otherRegions = otherRegionsOnce(deps.targets, options.signal);
  const plan: RegionShare[] = deps.targets ? await planRegions(deps.targets, policy, otherRegions) : [];
  const targets: ReplicaTarget[] = [];
  for (const share of plan) {
    const count = share.region === null ? share.replicas - 1 : share.replicas;
    if (count > 0) targets.push(...(await share.targets.place(count, [], bytesTotal)));
  }
  const replicator = new Replicator(targets, options.cold ? deps.cold : undefined, {
    concurrency: options.pushConcurrency,
    onSent: (sent) => {
      if (phase === "replicate") progress("replicate", sent, sendTotalBytes);
    },
  });

  /** Unique CIDs of this put, with sealed sizes, for pins and replacement pushes. */
  const cids: string[] = [];
  const sealedSizes: number[] = [];
  const seen = new Set<string>();
  /** Chunks the store held before this put: only those can be shared with other content (pin-ledger.ts). */
  const preexisting = new Set<string>();
  /** Chunks new to the local store, announced once flushed (group commit: nothing is announced that a power cut could lose). */
  const unannounced: string[] = [];
  const storeSealed = async (cid: string, sealed: Uint8Array, isData: boolean, spooled?: string) => {
    // Trusted: `cid` was computed from these very bytes by sealing them in this process (the store skips its re-hash);
    // `spooled`: a seal worker wrote them to that temp file in the store, which adopts it instead of writing them again.
    // sync: false: durable at the flush below, before anything is pinned, announced or returned.
    const { added } = spooled !== undefined ? await deps.store.adoptTrusted(cid, spooled, sealed.length, { pin: true }) : await deps.store.putTrusted(cid, sealed, { pin: true, sync: false });
    if (added) {
      if (isData) counters.newChunks++;
      counters.storedBytes += sealed.length;
      unannounced.push(cid);
    }
    if (!isData) counters.manifestBytes += sealed.length;
    if (seen.has(cid)) return;
    if (!added) preexisting.add(cid);
    seen.add(cid);
    cids.push(cid);
    sealedSizes.push(sealed.length);
    // A data chunk's bytes are lent by ingestFile (reused once this returns); the replicator keeps what it sends until sent.
    if (replicator.active) await replicator.add(cid, isData ? sealed.slice() : sealed, !added);
  };
  const fileCtx: FileIngestContext = {
    convergenceSecret: deps.convergenceSecret,
    private: options.private === true,
    chunker: options.chunker,
    signal: options.signal,
    storeSealed,
    spoolDir: deps.store.spoolDir,
    onChunk: (plaintextBytes) => {
      counters.bytesDone += plaintextBytes;
      counters.chunks++;
      progress("chunk");
    },
  };
  const encryption = options.private ? "private" : "convergent";

  const storeManifest = async (manifest: Manifest): Promise<{ ref: ManifestRef; key: Uint8Array }> => {
    const key = randomManifestKey();
    const { cid, sealed } = await sealManifest(manifest, key, nodeChunkCipher);
    await storeSealed(cid, sealed, false);
    return { ref: { cid, key: toBase64Url(key), sealedSizeBytes: sealed.length }, key };
  };
  const fileManifest = async (file: InputFile, ingested: IngestedFile): Promise<FileManifest> => {
    const fields = { name: file.name, mode: file.mode, encryption, sizeBytes: ingested.sizeBytes, sha256: ingested.sha256, createdAtMs: now() } as const;
    const { manifest, pages } = await buildFileManifest(fields, ingested.chunks, { cipher: nodeChunkCipher });
    for (const page of pages) await storeSealed(page.cid, page.sealed, false);
    return manifest;
  };
  const directoryManifest = async (dir: InputDirectory): Promise<DirectoryManifest> => {
    const entries: DirectoryEntry[] = [];
    for (const child of dir.children) {
      if (child.kind === "directory") {
        const sub = await directoryManifest(child);
        const { ref } = await storeManifestFitting(sub, storeManifest, fileManifestOfEntry);
        entries.push({ name: child.name, mode: child.mode, kind: "directory", sizeBytes: sub.sizeBytes, manifest: ref });
        continue;
      }
      const ingested = await ingestFile(child.path, fileCtx);
      if (ingested.chunks.length <= MAX_INLINE_CHUNKS_PER_ENTRY) {
        const sha256 = Buffer.from(ingested.sha256).toString("hex");
        entries.push({ name: child.name, mode: child.mode, kind: "file", sizeBytes: ingested.sizeBytes, sha256, chunks: ingested.chunks });
      } else {
        const manifest = await fileManifest(child, ingested);
        entries.push({ name: child.name, mode: child.mode, kind: "file", sizeBytes: ingested.sizeBytes, manifest: (await storeManifest(manifest)).ref });
      }
    }
    const sizeBytes = entries.reduce((sum, e) => sum + e.sizeBytes, 0);
    return { version: 1, kind: "directory", name: dir.name, mode: dir.mode, encryption, sizeBytes, createdAtMs: now(), entries };
  };

  progress("chunk");
  let root: { ref: ManifestRef; key: Uint8Array };
  try {
    const rootManifest = scan.root.kind === "file" ? await fileManifest(scan.root, await ingestFile(scan.root.path, fileCtx)) : await directoryManifest(scan.root);
    root = await storeManifestFitting(rootManifest, storeManifest, fileManifestOfEntry);
    sendTotalBytes = sealedSizes.reduce((a, b) => a + b, 0) * (targets.length + (options.cold ? 1 : 0));
    progress("replicate", replicator.report().sentBytes, sendTotalBytes);
    // Make the local copies durable (one group commit) while the pushes finish; only then announce them.
    await Promise.all([deps.store.flush(), replicator.finish()]);
    deps.announcer?.announce(unannounced);
    for (const share of plan) await replicator.replaceFailed(share.targets, deps.store, cids, bytesTotal, share.region ?? undefined);
  } catch (error) {
    // Nothing may keep pushing after put has failed (what was stored stays pinned: a re-put is cheap).
    await replicator.cancel();
    throw error;
  }
  const report = replicator.report();
  for (const id of report.failedTargets) warn(`replica peer ${id} failed; it does not count towards the replicas`);
  const replicasAchieved = 1 + report.completeTargets.length;
  const regions = plan.map((share) => ({
    region: share.region,
    replicas: share.replicas,
    achieved: (share.region === null ? 1 : 0) + report.completeTargets.filter((t) => (t.region ?? null) === share.region).length,
  }));
  if (deps.targets && replicasAchieved < replicas) warn(`only ${replicasAchieved} of ${replicas} replicas could be placed (not enough live peers on distinct hosts)`);
  for (const r of regions) {
    if (r.region !== null && r.achieved < r.replicas) warn(`region ${r.region}: only ${r.achieved} of ${r.replicas} replicas could be placed; its directory adds the rest as peers there allow`);
  }

  if (plan.length > 0) {
    progress("pin", counters.bytesDone);
    // A put whose chunks were all new shares none with other content: no walk of the library then.
    const needs = deps.pinNeeds && preexisting.size > 0 ? await deps.pinNeeds(preexisting, root.ref.cid, otherRegions) : new Map();
    for (const share of plan) await pinInRegion(share.targets, share.region, cids, sealedSizes, share.replicas, needs);
  }
  progress("done", counters.bytesDone);

  return {
    link: formatLink({ cid: root.ref.cid, key: root.key }, options.edgeUrl),
    cid: root.ref.cid,
    bytes: counters.bytesDone,
    files: scan.fileCount,
    chunks: counters.chunks,
    newChunks: counters.newChunks,
    storedBytes: counters.storedBytes,
    sentBytes: report.sentBytes,
    manifestBytes: counters.manifestBytes,
    replicasAchieved,
    replicaPeers: report.completeTargets.map((t) => t.id),
    regions: regions.length > 0 ? regions : [{ region: null, replicas, achieved: 1 }],
    coldChunks: report.coldChunks + report.coldSkipped,
    warnings,
  };

  /** An inline entry turned into its own file manifest (when a directory manifest is too large). */
  async function fileManifestOfEntry(entry: InlineFileEntry): Promise<DirectoryEntry> {
    const fields = { name: entry.name, mode: entry.mode, encryption, sizeBytes: entry.sizeBytes, sha256: entry.sha256, createdAtMs: now() } as const;
    const { manifest } = await buildFileManifest(fields, entry.chunks, { cipher: nodeChunkCipher });
    return { name: entry.name, mode: entry.mode, kind: "file", sizeBytes: entry.sizeBytes, manifest: (await storeManifest(manifest)).ref };
  }
}

/**
 * Seals and stores a manifest; a directory whose inline entries make it
 * larger than a manifest may be (4 MiB) gets them moved into their own file
 * manifests, largest first, until it fits.
 */
async function storeManifestFitting(
  manifest: Manifest,
  store: (m: Manifest) => Promise<{ ref: ManifestRef; key: Uint8Array }>,
  toReference: (entry: InlineFileEntry) => Promise<DirectoryEntry>,
): Promise<{ ref: ManifestRef; key: Uint8Array }> {
  for (;;) {
    try {
      return await store(manifest);
    } catch (error) {
      if (manifest.kind !== "directory" || (error as { code?: string }).code !== "manifest_too_large") throw error;
      const inline = manifest.entries.map((e, i) => ({ e, i })).filter((x) => "chunks" in x.e);
      if (inline.length === 0) throw error;
      inline.sort((a, b) => (b.e as InlineFileEntry).chunks.length - (a.e as InlineFileEntry).chunks.length);
      // Move the larger half (at least one) and retry.
      for (const { e, i } of inline.slice(0, Math.max(1, Math.ceil(inline.length / 2)))) {
        manifest.entries[i] = await toReference(e as InlineFileEntry);
      }
    }
  }
}

/**
 * Replica repair, the peer's half (issue 6 item 3; the directory's half is
 * durable-objects/region-directory/repair-scheduler.ts). The region
 * directory sends a `repair` job over this peer's WebSocket; the worker
 *
 *  1. copies the sealed chunk from the job's source: another peer's
 *     transfer server (each advertised address in turn), or R2 through the
 *     edge (`GET /v1/chunks/:cid`); when R2 lacks it too, from a holder in
 *     another region (`fetchFromOtherRegions`) — a region's share of a
 *     multi-region policy (region-spread.ts) has no other copy in its own
 *     region to repair from, and need not be in R2;
 *  2. stores it with `ChunkStore.put`, which hashes the bytes against the
 *     CID before anything is written (a corrupt or lying source fails the
 *     job with `corrupt`, and nothing is kept), pinned, so the copy is never
 *     evicted and counts as one of the chunk's replicas;
 *  3. announces it and waits until the directory acknowledged the
 *     announcement (that alone confirms the job there), then answers
 *     `repair_result` so the directory can free the job's slots at once.
 *
 * At most `concurrency` jobs run at once (params.repairJobsPerPeer, the
 * number the directory also respects): a job beyond that is refused with
 * `busy` at once, so repair never queues up behind itself and leaves this
 * peer's bandwidth to user downloads. Each job is bounded by its
 * `timeoutMs`. A failing source or store is reported with a code that says
 * whom to blame, never thrown: a bad job must not hurt the daemon.
 */
import { abortable, sleep } from "../core/abort.js";
import { PeercloudError } from "../core/errors.js";
import type { DirectoryToPeer, PeerToDirectory, RepairFailureCode } from "../core/messages.js";
import { ChunkMismatchError, type ChunkStore } from "./chunk-store.js";
import { AskLaterError } from "./sources.js";
import { TransferError } from "./transfer-client.js";

export type RepairJobMessage = Extract<DirectoryToPeer, { type: "repair" }>;
export type RepairResultMessage = Extract<PeerToDirectory, { type: "repair_result" }>;

export interface RepairWorkerOptions {
  store: Pick<ChunkStore, "put">;
  /** The sealed chunk from a peer's transfer server (TransferClient.getChunk). */
  fetchFromPeer(address: string, cid: string, signal: AbortSignal): Promise<Uint8Array>;
  /** The sealed chunk from R2 through the edge, null when R2 lacks it (EdgeClient.getChunkFromR2). */
  fetchFromR2(cid: string, signal: AbortSignal): Promise<Uint8Array | null>;
  /** The sealed chunk from a holder in another region, null when none has it (tried when R2 lacks the chunk). */
  fetchFromOtherRegions?(cid: string, signal: AbortSignal): Promise<Uint8Array | null>;
  /** Announces `cid` and resolves once the directory acknowledged it. */
  announce(cid: string): Promise<void>;
  /** Sends the job's outcome to the directory (dropped when disconnected: the announcement confirms anyway). */
  report(result: RepairResultMessage): void;
  /** Jobs at once. */
  concurrency: number;
  onEvent?: (event: RepairEvent) => void;
}

export type RepairEvent =
  | { event: "repair_done"; jobId: string; cid: string; source: string; sizeBytes: number; durationMs: number }
  | { event: "repair_failed"; jobId: string; cid: string; source: string; code: RepairFailureCode; message: string };

/** "Busy" answers from a source that a job waits out before it gives up on that address, and the shortest wait. */
const MAX_BUSY_RETRIES = 5;
const MIN_BUSY_WAIT_MS = 100;

class RepairFailure extends Error {
  constructor(
    readonly code: RepairFailureCode,
    message: string,
  ) {
    super(message);
  }
}

export class RepairWorker {
  private readonly running = new Map<string, AbortController>();
  private closed = false;

  constructor(private readonly options: RepairWorkerOptions) {
    if (!Number.isSafeInteger(options.concurrency) || options.concurrency < 1) throw new RangeError(`RepairWorker: concurrency must be a positive integer, got ${options.concurrency}`);
  }

  /** Repair jobs in progress. */
  get active(): number {
    return this.running.size;
  }

  /** Starts a job (or refuses it with `busy`); never throws. A job id already running is ignored (a re-sent job). */
  handle(job: RepairJobMessage): void {
    if (this.running.has(job.jobId)) return;
    if (this.closed || this.running.size >= this.options.concurrency) {
      const message = this.closed ? "this peer is shutting down" : `already running ${this.running.size} repair job(s), the limit`;
      return this.finish(job, new RepairFailure(this.closed ? "failed" : "busy", message), Date.now());
    }
    const abort = new AbortController();
    this.running.set(job.jobId, abort);
    const timer = setTimeout(() => abort.abort(new RepairFailure("source_unreachable", `no copy within ${job.timeoutMs} ms`)), job.timeoutMs);
    const startedMs = Date.now();
    void this.copy(job, abort.signal)
      .then(
        (sizeBytes) => this.finish(job, sizeBytes, startedMs),
        (error: unknown) => this.finish(job, error, startedMs),
      )
      .finally(() => {
        clearTimeout(timer);
        this.running.delete(job.jobId);
      });
  }

  /** Aborts every job (the daemon stops); their results report `failed`. */
  close(): void {
    this.closed = true;
    for (const abort of this.running.values()) abort.abort(new RepairFailure("failed", "this peer is shutting down"));
  }

  private async copy(job: RepairJobMessage, signal: AbortSignal): Promise<number> {
    const bytes = await this.fetch(job, signal);
    signal.throwIfAborted();
    try {
      await this.options.store.put(job.cid, bytes, { pin: true });
    } catch (error) {
      if (error instanceof ChunkMismatchError) throw new RepairFailure("corrupt", `the source sent bytes that are not ${job.cid}: ${error.message}`);
      throw new RepairFailure("store_failed", `could not store ${job.cid}: ${messageOf(error)}`);
    }
    // Announced by the store's "added" event too; asking again covers a chunk that was present already.
    await abortable(this.options.announce(job.cid), signal);
    return bytes.length;
  }

  private async fetch(job: RepairJobMessage, signal: AbortSignal): Promise<Uint8Array> {
    const { source } = job;
    if (source.kind === "r2") {
      let bytes: Uint8Array | null;
      try {
        bytes = await this.options.fetchFromR2(job.cid, signal);
      } catch (error) {
        throw signal.aborted ? signal.reason : new RepairFailure("source_unreachable", `R2 through the edge: ${messageOf(error)}`);
      }
      if (!bytes && this.options.fetchFromOtherRegions) {
        try {
          bytes = await this.options.fetchFromOtherRegions(job.cid, signal);
        } catch (error) {
          if (signal.aborted) throw signal.reason;
          throw new RepairFailure("source_missing", `R2 does not hold ${job.cid}, and other regions' holders failed: ${messageOf(error)}`);
        }
      }
      if (!bytes) throw new RepairFailure("source_missing", this.options.fetchFromOtherRegions ? `neither R2 nor another region holds ${job.cid}` : `R2 does not hold ${job.cid}`);
      return bytes;
    }
    let last: RepairFailure | null = null;
    for (const address of source.addresses) {
      try {
        return await this.fetchWaitingWhileBusy(address, job.cid, signal);
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        const missing = error instanceof TransferError && error.code === "chunk_not_found";
        last = new RepairFailure(missing ? "source_missing" : "source_unreachable", `source ${source.nodeId.slice(0, 16)}… at ${address}: ${messageOf(error)}`);
        if (missing) break;
      }
    }
    throw last ?? new RepairFailure("source_unreachable", "the source has no address");
  }

  /**
   * A source whose send slots are all taken answers 503 busy with when to
   * ask again (transfer-server.ts): that is no fault of the source, and
   * reporting it as unreachable would make the directory count it against
   * the source. So the worker waits as told and asks again, a few times,
   * within the job's time (the signal).
   */
  private async fetchWaitingWhileBusy(address: string, cid: string, signal: AbortSignal): Promise<Uint8Array> {
    for (let busy = 0; ; busy++) {
      try {
        return await this.options.fetchFromPeer(address, cid, signal);
      } catch (error) {
        if (!(error instanceof AskLaterError) || busy >= MAX_BUSY_RETRIES || signal.aborted) throw error;
        await sleep(Math.max(MIN_BUSY_WAIT_MS, error.retryAfterMs), signal);
      }
    }
  }

  private finish(job: RepairJobMessage, outcome: number | unknown, startedMs: number): void {
    const source = job.source.kind === "r2" ? "r2" : job.source.nodeId;
    if (typeof outcome === "number") {
      this.options.report({ type: "repair_result", jobId: job.jobId, cid: job.cid, ok: true, sizeBytes: outcome });
      this.options.onEvent?.({ event: "repair_done", jobId: job.jobId, cid: job.cid, source, sizeBytes: outcome, durationMs: Date.now() - startedMs });
      return;
    }
    const failure = outcome instanceof RepairFailure ? outcome : new RepairFailure("failed", messageOf(outcome));
    const message = failure.message.slice(0, 500);
    this.options.report({ type: "repair_result", jobId: job.jobId, cid: job.cid, ok: false, code: failure.code, message });
    this.options.onEvent?.({ event: "repair_failed", jobId: job.jobId, cid: job.cid, source, code: failure.code, message });
  }
}

function messageOf(error: unknown): string {
  return error instanceof PeercloudError || error instanceof Error ? error.message : String(error);
}

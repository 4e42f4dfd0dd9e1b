/**
 * Put's outbound half: pushes every stored chunk (and manifest) to the
 * replica peers the directory chose, and with `--cold` to R2, while the
 * chunker is still producing — a bounded queue between them, so ingest runs
 * at the speed of the slower side with memory capped by `maxQueuedBytes`.
 *
 * - Re-puts send only what is missing: for a chunk that was already in the
 *   local store (an earlier put made it), a target or the cold store that
 *   can answer `has` is asked first, and nothing is sent if it holds it.
 *   New chunks are sent without asking (a HEAD per new chunk would cost a
 *   round trip for the rare cross-publisher duplicate).
 * - A push is tried twice; a target that fails twice is dropped for the
 *   rest of this put (a dead peer must not stall it). At the end, dropped
 *   targets are replaced once through `place` (excluding every peer used so
 *   far) and the replacements receive every chunk, read back from the
 *   local store. `replicasAchieved` counts only targets holding every chunk.
 * - A cold upload is tried twice too; a chunk that still fails makes
 *   `finish` throw (the publisher asked for R2 explicitly).
 */
import { PeercloudError } from "../core/errors.js";
import type { ChunkStore } from "./chunk-store.js";
import type { ColdStore, ReplicaTarget, ReplicaTargets } from "./sources.js";

export interface ReplicatorOptions {
  /** Concurrent pushes and uploads. Default 8. */
  concurrency?: number;
  /** Sealed bytes queued (not yet sent) before `add` waits. Default 64 MiB. */
  maxQueuedBytes?: number;
  /** Called after every send (for progress). */
  onSent?: (sentBytes: number) => void;
}

export interface ReplicationReport {
  /** Bytes actually sent to peers and R2. */
  sentBytes: number;
  /** Chunks uploaded to R2, and chunks R2 already held. */
  coldChunks: number;
  coldSkipped: number;
  /** Targets that hold every chunk (id, and region when not the home one). */
  completeTargets: { id: string; region?: string }[];
  /** Targets dropped after failures (and not counted). */
  failedTargets: string[];
}

export class ColdUploadError extends PeercloudError {
  constructor(failures: number, first: unknown) {
    super("cold_upload_failed", `${failures} chunk(s) failed to upload to the cold store (first error: ${messageOf(first)})`, 502);
    this.name = "ColdUploadError";
  }
}

interface TargetState {
  target: ReplicaTarget;
  failed: boolean;
}

const ATTEMPTS = 2;

export class Replicator {
  private readonly targets: TargetState[];
  private readonly concurrency: number;
  private readonly maxQueuedBytes: number;
  private readonly running = new Set<Promise<void>>();
  private readonly queue: (() => Promise<void>)[] = [];
  private queuedBytes = 0;
  private roomWaiters: (() => void)[] = [];
  private sentBytes = 0;
  private coldChunks = 0;
  private coldSkipped = 0;
  private coldFailures = 0;
  private firstColdError: unknown;
  private cancelled = false;

  constructor(
    targets: ReplicaTarget[],
    private readonly cold: ColdStore | undefined,
    private readonly options: ReplicatorOptions = {},
  ) {
    this.targets = targets.map((target) => ({ target, failed: false }));
    this.concurrency = options.concurrency ?? 8;
    this.maxQueuedBytes = options.maxQueuedBytes ?? 64 * 1024 * 1024;
  }

  /** Is there anywhere to send chunks? */
  get active(): boolean {
    return this.targets.length > 0 || this.cold !== undefined;
  }

  /**
   * Queues a chunk for every target (and R2). `known`: it was already in the
   * local store before this put. Resolves once the queue has room again.
   */
  async add(cid: string, sealed: Uint8Array, known: boolean): Promise<void> {
    if (!this.active || this.cancelled) return;
    while (this.queuedBytes >= this.maxQueuedBytes) await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    const sends: (() => Promise<void>)[] = [];
    for (const state of this.targets) sends.push(() => this.pushTo(state, cid, sealed, known));
    if (this.cold) sends.push(() => this.upload(cid, sealed, known));
    this.queuedBytes += sealed.length;
    let left = sends.length;
    for (const send of sends) {
      this.enqueue(async () => {
        try {
          await send();
        } finally {
          if (--left === 0) this.release(sealed.length);
        }
      });
    }
  }

  /** Drops queued sends and waits for those running (the put failed or was aborted). */
  async cancel(): Promise<void> {
    this.cancelled = true;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.release(0);
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Waits for every queued send; throws ColdUploadError if R2 uploads failed. */
  async finish(): Promise<void> {
    while (this.running.size > 0 || this.queue.length > 0) await Promise.allSettled([...this.running]);
    if (this.coldFailures > 0) throw new ColdUploadError(this.coldFailures, this.firstColdError);
  }

  /**
   * Replaces dropped targets of one region (undefined: the home region)
   * once: asks that region's `place` for as many peers as were dropped
   * there (excluding all used so far) and sends them every chunk of `cids`
   * from the local store.
   */
  async replaceFailed(place: ReplicaTargets, store: ChunkStore, cids: readonly string[], sizeBytes: number, region?: string): Promise<void> {
    const dropped = this.targets.filter((t) => t.failed && t.target.region === region).length;
    if (dropped === 0) return;
    const exclude = this.targets.map((t) => t.target.id);
    const replacements = (await place.place(dropped, exclude, sizeBytes)).filter((t) => !exclude.includes(t.id)).map((target) => ({ target, failed: false }));
    this.targets.push(...replacements);
    for (const cid of cids) {
      for (const state of replacements) {
        this.enqueue(async () => {
          if (state.failed) return;
          const sealed = await store.get(cid).catch(() => null);
          // Without the bytes this replacement cannot become complete.
          if (!sealed) state.failed = true;
          else await this.pushTo(state, cid, sealed, false);
        });
      }
      // Keep the task list (not the bytes: they are read when sent) short.
      while (this.queue.length > this.concurrency * 4) await Promise.race(this.running);
    }
    await this.finish();
  }

  report(): ReplicationReport {
    return {
      sentBytes: this.sentBytes,
      coldChunks: this.coldChunks,
      coldSkipped: this.coldSkipped,
      completeTargets: this.targets.filter((t) => !t.failed).map((t) => (t.target.region === undefined ? { id: t.target.id } : { id: t.target.id, region: t.target.region })),
      failedTargets: this.targets.filter((t) => t.failed).map((t) => t.target.id),
    };
  }

  private async pushTo(state: TargetState, cid: string, sealed: Uint8Array, known: boolean): Promise<void> {
    if (state.failed) return;
    if (known && state.target.has) {
      try {
        if (await state.target.has(cid)) return;
      } catch {
        // Not knowing is not fatal: send it.
      }
    }
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      if (state.failed) return;
      try {
        await state.target.push(cid, sealed);
        this.sent(sealed.length);
        return;
      } catch {
        if (attempt === ATTEMPTS) state.failed = true;
      }
    }
  }

  private async upload(cid: string, sealed: Uint8Array, known: boolean): Promise<void> {
    const cold = this.cold!;
    if (known && cold.has) {
      try {
        if (await cold.has(cid)) {
          this.coldSkipped++;
          return;
        }
      } catch {
        // Upload anyway.
      }
    }
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      try {
        await cold.put(cid, sealed);
        this.coldChunks++;
        this.sent(sealed.length);
        return;
      } catch (error) {
        if (attempt === ATTEMPTS) {
          this.coldFailures++;
          this.firstColdError ??= error;
        }
      }
    }
  }

  private sent(bytes: number): void {
    this.sentBytes += bytes;
    this.options.onSent?.(this.sentBytes);
  }

  private enqueue(task: () => Promise<void>): void {
    this.queue.push(task);
    this.pump();
  }

  private pump(): void {
    while (this.running.size < this.concurrency && this.queue.length > 0) {
      const task = this.queue.shift()!;
      const run: Promise<void> = task()
        .catch(() => {})
        .finally(() => {
          this.running.delete(run);
          this.pump();
        });
      this.running.add(run);
    }
  }

  private release(bytes: number): void {
    this.queuedBytes -= bytes;
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const wake of waiters) wake();
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

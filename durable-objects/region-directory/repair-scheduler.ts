/**
 * Replica repair, the directory's half (issue 6 item 3): turns the
 * under-replicated queue into repair jobs and drives them to the end.
 *
 * One pass (`run`, from the object's alarm):
 *  1. running jobs past their deadline, or whose target is no longer alive,
 *     fail (the target is avoided by the next attempt), and so do those whose
 *     source died (that source is avoided);
 *  2. jobs not yet running whose chunk left the queue are dropped; failed
 *     jobs whose backoff is over start a new round;
 *  3. planning: chunks with fewer open jobs than missing replicas get
 *     jobs, most endangered first (most missing replicas, then longest
 *     waiting), at most as many open jobs as the region's storage peers can
 *     run at once (`repairJobsPerPeer` each), so the table never balloons;
 *  4. dispatch: each queued job gets a source — a live holder, alive before
 *     suspect and least loaded first (rankProviders), else R2 when no live
 *     holder is left (or every one failed it) — and then all their targets
 *     at once from the placement auction (Directory.placeMany, placement.ts)
 *     excluding every holder, the targets of the chunk's other jobs and the
 *     peers that failed this job; neither may already run
 *     `repairJobsPerPeer` repair transfers. The job is sent on the target's
 *     WebSocket as `repair`.
 *
 * Rebalance moves (rebalancer.ts) are rows of the same table: this pass
 * times them out and fails them like repair jobs (step 1) and drops those
 * whose chunk became under-replicated (step 2), but neither plans nor
 * dispatches them — the rebalancer does, after this pass, in the repair
 * slots this pass left free, so repair always goes first.
 *
 * Confirmation is by announcement (Directory.announce → RepairJobs.confirm),
 * with the target's `repair_result` as the other way in: a job is done when
 * the replica is recorded, whichever message says so first. Failures come
 * back as `repair_result` with a code that says whom to blame: the source
 * (unreachable, missing the chunk, corrupt bytes) or the target.
 *
 * The per-peer limit is the repair "rate limit": it bounds how many repair
 * transfers a peer serves or receives at once, so user downloads keep the
 * rest of its links; the peer enforces the same number on its side.
 */
import type { DirectoryToPeer, PeerToDirectory, RepairFailureCode, RepairSource } from "../../src/core/messages.js";
import type { NetworkParams } from "../../src/core/params.js";
import type { Directory } from "./directory.js";
import type { PeerRecord } from "./peer-store.js";
import { R2_SOURCE, type RepairJob } from "./repair-jobs.js";

/** Most jobs planned or dispatched in one pass: bounds the rows a pass reads however long the queue is. */
export const REPAIR_BATCH = 256;

/** Failure codes that blame the source; the rest blame the target. */
const SOURCE_FAULTS: ReadonlySet<RepairFailureCode> = new Set(["source_unreachable", "source_missing", "corrupt"]);

export type RepairResult = Extract<PeerToDirectory, { type: "repair_result" }>;

export interface RepairSchedulerOptions {
  directory: Directory;
  params: NetworkParams;
  /** Sends to a peer connected to this object; false when it has no open socket. */
  send(nodeId: string, message: DirectoryToPeer): boolean;
}

export class RepairScheduler {
  constructor(private readonly opts: RepairSchedulerOptions) {}

  private get jobs() {
    return this.opts.directory.repairJobs;
  }

  /** One pass at `nowMs`; returns when the next pass is due without news (null: nothing pending). */
  run(nowMs: number): number | null {
    this.expire(nowMs);
    this.jobs.dropUnneeded();
    this.jobs.reviveFailed(nowMs);
    this.plan(nowMs);
    const waiting = this.dispatch(nowMs);
    const due = this.jobs.nextDueMs();
    // Jobs that found no free source or target are looked at again after a heartbeat interval (sooner when a job ends).
    const recheckMs = waiting ? nowMs + this.opts.params.heartbeatIntervalMs : null;
    return due === null ? recheckMs : recheckMs === null ? due : Math.min(due, recheckMs);
  }

  /**
   * A target's `repair_result`. Results for jobs that are gone (confirmed by
   * the announcement already) or now belong to another target (this one
   * timed out) are stale and ignored. Returns whether a job changed.
   */
  onResult(sender: PeerRecord, result: RepairResult, nowMs: number): boolean {
    const job = this.jobs.get(result.jobId);
    if (!job || job.state !== "running" || job.target !== sender.nodeId || job.cid !== result.cid) return false;
    const { params } = this.opts;
    if (result.ok) {
      // The peer says done only after its announcement was acknowledged, so the replica row is there.
      if (this.opts.directory.replicaStore.holders(job.cid).includes(sender.nodeId)) return this.jobs.confirm(sender.nodeId, [job.cid], nowMs, result.sizeBytes).length > 0;
      this.jobs.fail(job, { target: true, source: false }, "not_announced", params.repairMaxAttempts, params.repairRetryBackoffMs, nowMs);
      return true;
    }
    const blameSource = SOURCE_FAULTS.has(result.code);
    this.jobs.fail(job, { target: !blameSource, source: blameSource }, `${result.code}: ${result.message}`, params.repairMaxAttempts, params.repairRetryBackoffMs, nowMs);
    return true;
  }

  private expire(nowMs: number): void {
    const { directory, params } = this.opts;
    for (const job of this.jobs.list("running", Number.MAX_SAFE_INTEGER)) {
      const targetState = job.target ? directory.stateOf(job.target) : null;
      const sourceState = job.source && job.source !== R2_SOURCE ? directory.stateOf(job.source) : null;
      if (job.deadlineMs !== null && job.deadlineMs <= nowMs) {
        this.jobs.fail(job, { target: true, source: false }, "timeout", params.repairMaxAttempts, params.repairRetryBackoffMs, nowMs);
      } else if (targetState !== "alive") {
        this.jobs.fail(job, { target: true, source: false }, `target_${targetState ?? "unknown"}`, params.repairMaxAttempts, params.repairRetryBackoffMs, nowMs);
      } else if (sourceState === "dead") {
        // The copy cannot finish; retrying now (from another holder or R2) beats waiting for the target's timeout.
        this.jobs.fail(job, { target: false, source: true }, "source_dead", params.repairMaxAttempts, params.repairRetryBackoffMs, nowMs);
      }
    }
  }

  private plan(nowMs: number): void {
    const { directory, params } = this.opts;
    // Repair jobs only: moves hold peers' slots while they run, but never shrink what repair may plan.
    const counts = this.jobs.counts("repair");
    const room = Math.min(REPAIR_BATCH, directory.liveStoragePeers() * params.repairJobsPerPeer - counts.queued - counts.running);
    if (room <= 0) return;
    let planned = 0;
    for (const c of this.jobs.candidates(room)) {
      for (let i = c.openJobs; i < c.missing && planned < room; i++, planned++) this.jobs.plan(c.cid, c.missing, c.sizeBytes, nowMs);
      if (planned >= room) break;
    }
  }

  /**
   * Dispatches what it can; returns whether queued jobs are left waiting for
   * a free peer. Sources first (each job's least loaded live holder with a
   * free slot), then every job's target in one placement auction
   * (Directory.placeMany): a peer takes at most its free repair slots, the
   * jobs of one chunk land on distinct hosts that hold no copy, and the
   * batch spreads over the roomiest, idlest peers instead of each job
   * taking the single best one in turn.
   */
  private dispatch(nowMs: number): boolean {
    const { params, directory } = this.opts;
    const running = this.jobs.runningPerPeer();
    const free = (nodeId: string) => (running.get(nodeId) ?? 0) < params.repairJobsPerPeer;
    let waiting = false;
    const ready: { job: RepairJob; source: RepairSource }[] = [];
    // Moves are the rebalancer's to dispatch (their target is fixed); it runs after this pass, in the slots left.
    for (const job of this.jobs.list("queued", REPAIR_BATCH, "repair")) {
      if (job.notBeforeMs > nowMs) continue;
      const source = this.chooseSource(job, free);
      if (source === "none") {
        // No live holder and R2 failed it too: nothing can serve this chunk now; wait out the backoff.
        this.jobs.park(job.jobId, "no_source: no live holder, and R2 failed too", nowMs + params.repairRetryBackoffMs);
        continue;
      }
      if (source === "busy") {
        waiting = true;
        continue;
      }
      ready.push({ job, source });
    }

    // Every job's target in one auction: the jobs of one chunk form a group (distinct hosts), each excluding
    // the chunk's holders, the targets of its running jobs, its own failed targets and its source.
    const placementJobs = ready.map(({ job, source }) => {
      const siblings = this.jobs.ofCid(job.cid).flatMap((j) => (j.state === "running" && j.target ? [j.target] : []));
      const exclude = new Set([...directory.replicaStore.holders(job.cid), ...siblings, ...job.avoidTargets]);
      if (source.kind === "peer") exclude.add(source.nodeId);
      return { id: job.jobId, group: job.cid, count: 1, exclude: [...exclude], sizeBytes: job.sizeBytes ?? undefined };
    });
    // Capacities are the slots free before this pass: reserving the sources' slots first would let a batch whose
    // sources took every peer's slots place nothing, pass after pass. Admission below then keeps each peer within
    // its limit, in priority order, so the first job that got a target always starts.
    const targets = directory.placeMany(placementJobs, (nodeId) => params.repairJobsPerPeer - (running.get(nodeId) ?? 0));

    for (const { job, source } of ready) {
      const target = targets.get(job.jobId)?.[0];
      if (!target || !free(target) || (source.kind === "peer" && !free(source.nodeId))) {
        waiting = true;
        continue;
      }
      const sourceId = source.kind === "peer" ? source.nodeId : R2_SOURCE;
      this.jobs.start(job.jobId, target, sourceId, nowMs + params.repairJobTimeoutMs);
      const sent = this.opts.send(target, { type: "repair", jobId: job.jobId, cid: job.cid, sizeBytes: job.sizeBytes, source, timeoutMs: params.repairJobTimeoutMs });
      if (!sent) {
        const started = this.jobs.get(job.jobId)!;
        this.jobs.fail(started, { target: true, source: false }, "target_not_connected", params.repairMaxAttempts, params.repairRetryBackoffMs, nowMs);
        continue;
      }
      running.set(target, (running.get(target) ?? 0) + 1);
      if (source.kind === "peer") running.set(source.nodeId, (running.get(source.nodeId) ?? 0) + 1);
    }
    return waiting;
  }

  /** A live holder with a free repair slot; R2 when no usable holder is left; "busy" when holders exist but are all at their limit. */
  private chooseSource(job: RepairJob, free: (nodeId: string) => boolean): RepairSource | "busy" | "none" {
    const usable = this.opts.directory.findProviders(job.cid, this.opts.params.k).filter((p) => p.addresses.length > 0 && !job.avoidSources.includes(p.nodeId));
    const holder = usable.find((p) => free(p.nodeId));
    if (holder) return { kind: "peer", nodeId: holder.nodeId, addresses: holder.addresses };
    if (usable.length > 0) return "busy";
    return job.avoidSources.includes(R2_SOURCE) ? "none" : { kind: "r2" };
  }
}

/**
 * Rebalance (issue 6 item 5): a peer that joins empty gets its share of the
 * region's data over time. Repair only re-creates missing replicas and new
 * uploads only go where there is room, so without this an empty peer would
 * wait for new content while the old peers stay full.
 *
 * One pass (`run`, from the object's alarm, after repair and trim):
 *
 *  1. housekeeping: moves not running that cannot go on are dropped — their
 *     attempts are used up, their target failed them (that target then gets
 *     no move for `repairRetryBackoffMs`), left, started draining or holds
 *     the chunk already, their source no longer holds it, or the chunk is
 *     no longer exactly at its target; settled ledger rows are forgotten;
 *  2. retries: queued moves (a source failed them) go out again, from the
 *     planned source or another live holder;
 *  3. planning (src/core/rebalance.ts planMoves): every alive, non-draining
 *     storage peer that reported its free space and capacity since this
 *     object started has a fill, capacity minus free over capacity, with
 *     the moves its report does not show yet applied: open moves, and
 *     ledger moves confirmed (for the target) or trimmed (for the source)
 *     at or after its last report. Peers more than
 *     `rebalanceThresholdPercent` points off the mean are paired, emptiest
 *     target with fullest source; each move is a chunk the source holds
 *     that is pinned, warm, exactly at its target with no repair job or
 *     unsettled move, of known size, and that no peer on the target's host
 *     holds. At most `rebalanceChunksPerPass` moves a pass, and only in the
 *     repair slots the repair pass left free (`repairJobsPerPeer`, source
 *     and target both), so repair always goes first.
 *
 * A move is a repair job with a fixed target (repair-jobs.ts), sent as an
 * ordinary `repair` message: the peer copies, verifies, pins and announces
 * it, the announcement confirms it, and the scheduler's pass times it out
 * or fails it like any job. Once confirmed the chunk is one replica over
 * its target, and the ledger (rebalance-ledger.ts) tells the trimmer to take
 * the source's copy first and without waiting for the trim grace: counting
 * replicas never drop below the target, since the copy is made before the
 * trim and the trimmer never goes below it.
 */
import type { DirectoryToPeer, RepairSource } from "../../src/core/messages.js";
import type { NetworkParams } from "../../src/core/params.js";
import { planMoves, type BalancePeer, type MoveCandidate, type PlannedMove } from "../../src/core/rebalance.js";
import { randomBytes } from "../../src/core/bytes.js";
import { cidFromSha256 } from "../../src/core/cid.js";
import { storesChunks } from "../../src/core/roles.js";
import type { Directory } from "./directory.js";
import type { PeerRecord } from "./peer-store.js";
import type { LedgerMove } from "./rebalance-ledger.js";
import type { RepairJob } from "./repair-jobs.js";
import type { Sql } from "./sql.js";

/** Most queued moves a pass retries. */
const RETRY_BATCH = 64;
/** Rows of a source's chunks a pass reads per move it may plan, from each source and in all. */
const SCAN_PER_MOVE = 4;
const SCAN_TOTAL_PER_MOVE = 16;

export interface RebalancerOptions {
  directory: Directory;
  sql: Sql;
  params: NetworkParams;
  send(nodeId: string, message: DirectoryToPeer): boolean;
}

export interface RebalancePass {
  /** Moves planned in this pass (each dispatched; one whose target was not connected is dropped by the next pass). */
  planned: PlannedMove[];
  /** Moves that went out (new or retried). */
  started: number;
  /** Moves given up in this pass. */
  dropped: number;
  /** The earliest deadline of a running job or move (null: none), for the alarm: moves started here must time out too. */
  nextDueMs: number | null;
}

export class Rebalancer {
  /** Targets that failed a move, until when they get no new one: a peer that cannot store would otherwise be picked every pass. */
  private readonly cooldown = new Map<string, number>();

  constructor(private readonly opts: RebalancerOptions) {}

  private get jobs() {
    return this.opts.directory.repairJobs;
  }

  run(nowMs: number): RebalancePass {
    for (const [nodeId, untilMs] of this.cooldown) if (untilMs <= nowMs) this.cooldown.delete(nodeId);
    const dropped = this.dropHopeless(nowMs);
    this.settleLedger(nowMs);

    const running = this.jobs.runningPerPeer();
    let started = 0;
    for (const job of this.jobs.list("queued", RETRY_BATCH, "move")) if (this.dispatch(job, running, nowMs)) started++;

    const planned = planMoves(this.balancePeers(running), this.candidatesOf(), {
      thresholdPercent: this.opts.params.rebalanceThresholdPercent,
      maxMoves: this.opts.params.rebalanceChunksPerPass,
    });
    for (const move of planned) {
      const job = this.jobs.get(this.jobs.planMove(move.cid, move.sizeBytes, move.from, move.to, nowMs))!;
      if (this.dispatch(job, running, nowMs)) started++;
    }
    return { planned, started, dropped, nextDueMs: this.jobs.nextDueMs() };
  }

  /** Step 1: drops moves not running that cannot go on; returns how many. */
  private dropHopeless(nowMs: number): number {
    const { directory, params } = this.opts;
    let dropped = 0;
    for (const state of ["queued", "failed"] as const) {
      for (const job of this.jobs.list(state, Number.MAX_SAFE_INTEGER, "move")) {
        const to = job.moveTo!;
        const targetFailed = job.avoidTargets.includes(to);
        if (targetFailed) this.cooldown.set(to, nowMs + params.repairRetryBackoffMs);
        const target = directory.record(to);
        const holders = directory.replicaStore.holders(job.cid);
        const pin = directory.replicaStore.pinState(job.cid);
        const hopeless =
          state === "failed" ||
          targetFailed ||
          target?.state !== "alive" ||
          target.draining === true ||
          holders.includes(to) ||
          !holders.includes(job.moveFrom!) ||
          pin === null ||
          pin.liveCount !== pin.target;
        if (hopeless) {
          this.jobs.drop(job.jobId);
          dropped++;
        }
      }
    }
    return dropped;
  }

  /**
   * Forgets ledger moves whose effects every report shows (the source's copy
   * gone before its last report, the copy there before the target's), or
   * that are older than any trim of theirs could take (the chunk lost a
   * replica meanwhile, say; the ordinary trim handles what is left).
   */
  private settleLedger(nowMs: number): void {
    const { directory, params } = this.opts;
    const ledger = directory.rebalanceLedger;
    ledger.markGone(nowMs);
    const maxAgeMs = params.trimGraceMs + 2 * params.statusIntervalMs;
    for (const move of ledger.list()) {
      const reported = move.trimmedMs !== null && !this.unreported(move, move.from) && !this.unreported(move, move.to);
      if (reported || nowMs >= move.confirmedMs + maxAgeMs) ledger.forget(move);
    }
  }

  /** Whether `nodeId`'s last status report (if any) may predate the part of `move` that concerns it. */
  private unreported(move: LedgerMove, nodeId: string): boolean {
    const statusAtMs = this.opts.directory.record(nodeId)?.statusAtMs;
    if (statusAtMs === undefined) return true;
    if (nodeId === move.to && move.confirmedMs >= statusAtMs) return true;
    return nodeId === move.from && (move.trimmedMs === null || move.trimmedMs >= statusAtMs);
  }

  /** Sends a queued move to its target if it and a source have a free slot; returns whether it went out. */
  private dispatch(job: RepairJob, running: Map<string, number>, nowMs: number): boolean {
    const { params } = this.opts;
    const free = (nodeId: string) => (running.get(nodeId) ?? 0) < params.repairJobsPerPeer;
    const target = job.moveTo!;
    const source = free(target) ? this.chooseSource(job, free) : null;
    if (!source) return false;
    this.jobs.start(job.jobId, target, source.nodeId, nowMs + params.repairJobTimeoutMs);
    if (!this.opts.send(target, { type: "repair", jobId: job.jobId, cid: job.cid, sizeBytes: job.sizeBytes, source, timeoutMs: params.repairJobTimeoutMs })) {
      // Blames the target: the next pass drops the move and gives the target a rest.
      this.jobs.fail(this.jobs.get(job.jobId)!, { target: true, source: false }, "target_not_connected", params.repairMaxAttempts, params.repairRetryBackoffMs, nowMs);
      return false;
    }
    running.set(target, (running.get(target) ?? 0) + 1);
    running.set(source.nodeId, (running.get(source.nodeId) ?? 0) + 1);
    return true;
  }

  /** The planned source if it can serve, else another live holder with a free slot; never R2 (a move needs no cold copy). */
  private chooseSource(job: RepairJob, free: (nodeId: string) => boolean): Extract<RepairSource, { kind: "peer" }> | null {
    const usable = this.opts.directory
      .findProviders(job.cid, this.opts.params.k)
      .filter((p) => p.state === "alive" && p.addresses.length > 0 && !job.avoidSources.includes(p.nodeId) && free(p.nodeId));
    const pick = usable.find((p) => p.nodeId === job.moveFrom) ?? usable[0];
    return pick ? { kind: "peer", nodeId: pick.nodeId, addresses: pick.addresses } : null;
  }

  /** Step 3's peers: their fills as reported, with the moves their reports do not show yet applied. */
  private balancePeers(running: Map<string, number>): BalancePeer[] {
    const { directory, params } = this.opts;
    const pending = new Map<string, number>();
    const shift = (nodeId: string, bytes: number) => pending.set(nodeId, (pending.get(nodeId) ?? 0) + bytes);
    for (const state of ["queued", "running"] as const) {
      for (const job of this.jobs.list(state, Number.MAX_SAFE_INTEGER, "move")) {
        shift(job.moveTo!, job.sizeBytes ?? 0);
        shift(job.moveFrom!, -(job.sizeBytes ?? 0));
      }
    }
    for (const move of directory.rebalanceLedger.list()) {
      if (this.unreported(move, move.to)) shift(move.to, move.sizeBytes);
      if (this.unreported(move, move.from)) shift(move.from, -move.sizeBytes);
    }
    return directory
      .liveRecords()
      .filter((p) => p.state === "alive" && !p.draining && storesChunks(p.roles) && p.statusAtMs !== undefined && p.freeBytes !== null && p.capacity.storageBytes > 0)
      .map((p: PeerRecord) => ({
        nodeId: p.nodeId,
        hostId: p.hostId,
        usedBytes: Math.max(0, p.capacity.storageBytes - p.freeBytes! + (pending.get(p.nodeId) ?? 0)),
        capacityBytes: p.capacity.storageBytes,
        slots: this.cooldown.has(p.nodeId) ? 0 : Math.max(0, params.repairJobsPerPeer - (running.get(p.nodeId) ?? 0)),
      }));
  }

  /**
   * Chunks a source could give away, read once per source and pass from a
   * random point of the CID space (CIDs are uniform hashes, so every chunk
   * gets its turn and a pass reads a bounded slice of the source's rows).
   */
  private candidatesOf(): (source: string) => readonly MoveCandidate[] {
    const cache = new Map<string, MoveCandidate[]>();
    const start = cidFromSha256(randomBytes(32));
    const perMove = this.opts.params.rebalanceChunksPerPass;
    // The fullest sources are asked first; once the budget is spent, the others wait for a later pass.
    let budget = SCAN_TOTAL_PER_MOVE * perMove;
    return (source) => {
      let list = cache.get(source);
      if (!list) {
        const limit = Math.min(budget, SCAN_PER_MOVE * perMove);
        const rows = limit > 0 ? this.scan(source, start, ">=", limit) : [];
        if (rows.length < limit) rows.push(...this.scan(source, start, "<", limit - rows.length));
        budget -= limit;
        list = rows.flatMap((r) => this.candidate(r.cid, r.size_bytes));
        cache.set(source, list);
      }
      return list;
    };
  }

  private scan(source: string, start: string, op: ">=" | "<", limit: number): { cid: string; size_bytes: number }[] {
    return this.opts.sql
      .exec<{ cid: string; size_bytes: number }>(
        `SELECT r.cid, p.size_bytes FROM replicas r JOIN pins p ON p.cid = r.cid
         WHERE r.node_id = ? AND r.cid ${op} ? AND p.cold = 0 AND p.size_bytes > 0 AND p.live_count = p.target
           AND NOT EXISTS (SELECT 1 FROM repair_jobs j WHERE j.cid = r.cid)
           AND NOT EXISTS (SELECT 1 FROM rebalance_moves m WHERE m.cid = r.cid AND m.trimmed_ms IS NULL)
         ORDER BY r.cid LIMIT ?`,
        source,
        start,
        limit,
      )
      .toArray();
  }

  /** A chunk with its holders and their hosts; none if any holder that is not dead does not count (draining: trim's business first). */
  private candidate(cid: string, sizeBytes: number): MoveCandidate[] {
    const { directory } = this.opts;
    const holders = directory.replicaStore.holders(cid);
    const records = holders.map((id) => directory.record(id));
    if (records.some((r) => r && r.state !== "dead" && r.draining)) return [];
    return [{ cid, sizeBytes, holders, holderHosts: records.flatMap((r) => (r ? [r.hostId] : [])) }];
  }
}

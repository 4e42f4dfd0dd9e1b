/**
 * SIMULATION of durability (issue 6, "Durability in simulation"): how likely
 * a file is to be lost within a year, against the replication factor, with
 * and without the R2 cold tier. Discrete-event, virtual clock, seeded: the
 * same parameters and seed give the same result on every run.
 *
 * The model (its assumptions are listed in docs/operations.md, "Durability
 * simulation"):
 * - `peers` host slots, each storing `peerCapacityBytes × fillFraction`.
 *   What happens to the hosts (churn, permanent failures, group outages) is
 *   a trace generated independently of the data (peer-trace.ts) and shared
 *   by every configuration compared on it.
 * - A sample of `files × chunksPerFile` chunks is placed on r distinct
 *   hosts in distinct host groups (uniformly at random: the auction balances
 *   load, which does not change who fails). Only the sample is simulated
 *   chunk by chunk; the repair traffic of the rest of the data is a uniform
 *   fluid background that delays ordinary repairs (below).
 * - Detection follows src/core/liveness.ts with the network's parameters: a
 *   host that goes silent (last heartbeat a uniform part of one interval
 *   before the outage) is dead once livenessState says so, i.e. after
 *   deadAfterMs. Only then do its replicas stop counting and repair starts.
 *   A transient outage shorter than that costs nothing; a longer one gets
 *   its chunks repaired too, and when the host comes back its copies are
 *   extra and trimmed (in-flight repairs they make unnecessary are
 *   cancelled).
 * - Repair of a chunk copies it from a random online holder (from R2 when no
 *   holder is left and the cold tier is on; otherwise it waits for an
 *   offline holder to return) to a random online host that lacks it, in
 *   chunkBytes / repairBandwidthBytesPerSec; a host takes part in at most
 *   `repairConcurrency` transfers at once (as source or target; R2 is not
 *   limited). Most endangered first: a chunk that has lost more than one
 *   replica skips the background queue of ordinary repairs.
 * - A chunk is lost when its last copy on a host is destroyed and there is
 *   no cold copy (cold tier off, or R2 lost it: each cold object is lost at
 *   an exponential time with the annual loss rate `r2AnnualLossRate`). A
 *   file is lost when any of its chunks is.
 *
 * Pure code: no `node:` imports, no clock, no Math.random.
 */
import { deadAfterMs, livenessState, type LivenessParams } from "../core/liveness.js";
import { DEFAULT_PARAMS } from "../core/params.js";
import { EventQueue } from "./event-queue.js";
import { anyOfLost, lossProbability, meanTimeToDataLoss } from "./markov.js";
import { failureRatePerMs, generatePeerTrace, groupOf, TraceKind, YEAR_MS, type PeerTrace, type TraceParams } from "./peer-trace.js";
import { deriveSeed, exponential, mulberry32, randomInt, type Rand } from "./random.js";

const DAY_MS = 24 * 3600_000;
const MINUTE_MS = 60_000;

export interface DurabilityParams extends Omit<TraceParams, "horizonMs"> {
  peerCapacityBytes: number;
  /** Share of each host's capacity in use; the stored bytes set the real network's repair volume. */
  fillFraction: number;
  chunkBytes: number;
  chunksPerFile: number;
  /** Files in the simulated sample. */
  files: number;
  /** Independent simulated years (Monte-Carlo runs), each with its own trace and placement. */
  years: number;
  seed: number;
  replicationFactor: number;
  coldTier: boolean;
  /** Probability that R2 loses a given object within a year (11 nines of durability: 1e-11). */
  r2AnnualLossRate: number;
  /** Duration of one repair transfer is chunkBytes / this. */
  repairBandwidthBytesPerSec: number;
  /** Repair transfers one host takes part in at once. */
  repairConcurrency: number;
  /** The failure detector's thresholds (src/core/params.ts defaults). */
  liveness: LivenessParams;
}

export const DEFAULT_DURABILITY_PARAMS: DurabilityParams = {
  peers: 10_000,
  churnPerPeerPerYear: 12,
  meanOutageMs: 10 * MINUTE_MS,
  annualFailureRate: 0.05,
  groupSize: 20,
  groupOutagesPerGroupPerYear: 0,
  groupMeanOutageMs: 60 * MINUTE_MS,
  groupPermanentFraction: 0,
  peerCapacityBytes: 2e12,
  fillFraction: 0.5,
  chunkBytes: 1024 * 1024,
  chunksPerFile: 8,
  files: 2_000,
  years: 1,
  seed: 1,
  replicationFactor: DEFAULT_PARAMS.defaultReplicationFactor,
  coldTier: false,
  r2AnnualLossRate: 1e-11,
  repairBandwidthBytesPerSec: 12.5e6,
  repairConcurrency: 4,
  liveness: {
    heartbeatIntervalMs: DEFAULT_PARAMS.heartbeatIntervalMs,
    suspectAfterMissedHeartbeats: DEFAULT_PARAMS.suspectAfterMissedHeartbeats,
    deadAfterMissedHeartbeats: DEFAULT_PARAMS.deadAfterMissedHeartbeats,
  },
};

/** What one configuration did over all its simulated years (observed, from the sample). */
export interface DurabilityRun {
  replicationFactor: number;
  coldTier: boolean;
  years: number;
  files: number;
  chunks: number;
  /** Files lost, summed over the years (each year restarts with every file intact). */
  lostFiles: number;
  lostChunks: number;
  /** Hosts declared dead by the detector: after a permanent failure, or a transient outage longer than the timeout. */
  detections: number;
  transientDetections: number;
  permanentFailures: number;
  repairsCompleted: number;
  repairsFailed: number;
  repairsCancelled: number;
  /** Bytes copied by repairs of the sample: host to host, and from R2. */
  repairBytes: number;
  coldRestoreBytes: number;
  trimmedReplicas: number;
  /** Time from a replica's host going silent to its replacement being written, ms; one per repaired replica. */
  timeToRepairMs: number[];
}

interface Job {
  chunk: number;
  /** Source identity, or -1 for R2. */
  source: number;
  target: number;
  sourceEpoch: number;
  targetEpoch: number;
  cancelled: boolean;
}

type Event = { kind: "detect"; id: number; silence: number } | { kind: "job"; job: Job } | { kind: "coldLoss"; chunk: number };

export function validateDurabilityParams(p: DurabilityParams): void {
  const positiveInt = ["peers", "chunksPerFile", "files", "years", "replicationFactor", "repairConcurrency", "groupSize"] as const;
  for (const key of positiveInt) if (!Number.isInteger(p[key]) || p[key] < 1) throw new RangeError(`durability: ${key} must be a positive integer, got ${p[key]}`);
  const positive = ["meanOutageMs", "groupMeanOutageMs", "peerCapacityBytes", "chunkBytes", "repairBandwidthBytesPerSec"] as const;
  for (const key of positive) if (!(p[key] > 0) || !Number.isFinite(p[key])) throw new RangeError(`durability: ${key} must be a positive number, got ${p[key]}`);
  const nonNegative = ["churnPerPeerPerYear", "groupOutagesPerGroupPerYear"] as const;
  for (const key of nonNegative) if (!(p[key] >= 0) || !Number.isFinite(p[key])) throw new RangeError(`durability: ${key} must be a non-negative number, got ${p[key]}`);
  const probabilities = ["annualFailureRate", "r2AnnualLossRate"] as const;
  for (const key of probabilities) if (!(p[key] >= 0 && p[key] < 1)) throw new RangeError(`durability: ${key} must be in [0, 1), got ${p[key]}`);
  if (!(p.fillFraction > 0 && p.fillFraction <= 1)) throw new RangeError(`durability: fillFraction must be in (0, 1], got ${p.fillFraction}`);
  if (!(p.groupPermanentFraction >= 0 && p.groupPermanentFraction <= 1)) throw new RangeError(`durability: groupPermanentFraction must be in [0, 1], got ${p.groupPermanentFraction}`);
  if (!Number.isInteger(p.seed) || p.seed < 0) throw new RangeError(`durability: seed must be a non-negative integer, got ${p.seed}`);
  if (p.replicationFactor > p.peers) throw new RangeError(`durability: replicationFactor ${p.replicationFactor} exceeds the ${p.peers} peers`);
}

export function traceParams(p: DurabilityParams): TraceParams {
  return {
    peers: p.peers,
    horizonMs: YEAR_MS,
    churnPerPeerPerYear: p.churnPerPeerPerYear,
    meanOutageMs: p.meanOutageMs,
    annualFailureRate: p.annualFailureRate,
    groupSize: p.groupSize,
    groupOutagesPerGroupPerYear: p.groupOutagesPerGroupPerYear,
    groupMeanOutageMs: p.groupMeanOutageMs,
    groupPermanentFraction: p.groupPermanentFraction,
  };
}

/** The host trace of year `year` under `seed`: identical for every replication factor and cold-tier setting. */
export function yearTrace(p: DurabilityParams, year: number): PeerTrace {
  return generatePeerTrace(traceParams(p), mulberry32(deriveSeed(p.seed, year, 1)));
}

/** Simulates every year of one configuration; pass `traces` to reuse them across configurations. */
export function simulateDurability(p: DurabilityParams, traces?: PeerTrace[]): DurabilityRun {
  validateDurabilityParams(p);
  const total: DurabilityRun = {
    replicationFactor: p.replicationFactor,
    coldTier: p.coldTier,
    years: p.years,
    files: p.files,
    chunks: p.files * p.chunksPerFile,
    lostFiles: 0,
    lostChunks: 0,
    detections: 0,
    transientDetections: 0,
    permanentFailures: 0,
    repairsCompleted: 0,
    repairsFailed: 0,
    repairsCancelled: 0,
    repairBytes: 0,
    coldRestoreBytes: 0,
    trimmedReplicas: 0,
    timeToRepairMs: [],
  };
  for (let year = 0; year < p.years; year++) {
    const y = new YearSimulation(p, year, traces?.[year] ?? yearTrace(p, year)).run();
    for (const key of Object.keys(total) as (keyof DurabilityRun)[]) {
      if (key === "timeToRepairMs") for (const t of y.timeToRepairMs) total.timeToRepairMs.push(t);
      else if (typeof total[key] === "number" && !["replicationFactor", "years", "files", "chunks"].includes(key)) (total[key] as number) += y[key] as number;
    }
  }
  return total;
}

/** One simulated year of one configuration. */
class YearSimulation {
  private readonly r: number;
  private readonly deadAfter: number;
  private readonly transferMs: number;
  private readonly queue = new EventQueue<Event>();
  private readonly repairRand: Rand;
  private readonly heartbeatRand: Rand;
  /** Extra wait of ordinary repairs behind the rest of the data's repairs: the fluid background's free time. */
  private backgroundFreeAtMs = 0;
  private readonly backgroundMsPerDetection: number;
  private now = 0;

  // Host identities: a slot gets a new identity when its host is replaced.
  private readonly slotIdentity: number[] = [];
  private readonly slotOf: number[] = [];
  private readonly dataLost: boolean[] = [];
  private readonly offlineCount: number[] = [];
  private readonly lastSeenMs: number[] = [];
  private readonly declaredDead: boolean[] = [];
  /** Bumped whenever the identity goes offline or dies: a transfer that saw another epoch at its start failed. */
  private readonly epoch: number[] = [];
  /** Bumped whenever a silence starts or ends: a pending detection of another silence is void. */
  private readonly silence: number[] = [];
  private readonly held: number[][] = [];
  private readonly waiting: number[][] = [];
  private readonly laneFreeAtMs: number[] = [];
  private readonly groupOutageIds = new Map<number, number[]>();

  // The sampled chunks.
  private readonly holders: number[][] = [];
  private readonly jobs: Job[][] = [];
  /** When each replica that stopped counting went silent (oldest first), to measure time-to-repair. */
  private readonly missing: { id: number; sinceMs: number }[][] = [];
  private readonly lost: Uint8Array;
  private readonly coldLossAtMs: Float64Array;
  private readonly out: DurabilityRun;

  constructor(
    private readonly p: DurabilityParams,
    year: number,
    private readonly trace: PeerTrace,
  ) {
    this.r = p.replicationFactor;
    this.deadAfter = deadAfterMs(p.liveness);
    this.transferMs = (p.chunkBytes / p.repairBandwidthBytesPerSec) * 1000;
    this.repairRand = mulberry32(deriveSeed(p.seed, year, 4));
    this.heartbeatRand = mulberry32(deriveSeed(p.seed, year, 5));
    const storedBytes = p.peerCapacityBytes * p.fillFraction;
    // A dead host's data is re-copied by all the others: each gets storedBytes/peers as source and as target.
    this.backgroundMsPerDetection = ((2 * storedBytes) / p.peers / (p.repairConcurrency * p.repairBandwidthBytesPerSec)) * 1000;
    const chunks = p.files * p.chunksPerFile;
    this.lost = new Uint8Array(chunks);
    this.coldLossAtMs = new Float64Array(chunks);
    this.out = {
      replicationFactor: p.replicationFactor,
      coldTier: p.coldTier,
      years: 1,
      files: p.files,
      chunks,
      lostFiles: 0,
      lostChunks: 0,
      detections: 0,
      transientDetections: 0,
      permanentFailures: 0,
      repairsCompleted: 0,
      repairsFailed: 0,
      repairsCancelled: 0,
      repairBytes: 0,
      coldRestoreBytes: 0,
      trimmedReplicas: 0,
      timeToRepairMs: [],
    };
    for (let slot = 0; slot < p.peers; slot++) this.slotIdentity.push(this.newIdentity(slot));
    const r2LossRatePerMs = -Math.log1p(-p.r2AnnualLossRate) / YEAR_MS;
    const groups = Math.ceil(p.peers / p.groupSize);
    for (let c = 0; c < chunks; c++) {
      // One stream per chunk: its cold-loss time, then its hosts in order, so that r + 1 hosts extend the r of a paired run.
      const rand = mulberry32(deriveSeed(p.seed, year, 2, c));
      this.coldLossAtMs[c] = exponential(rand, r2LossRatePerMs);
      const hosts: number[] = [];
      const usedGroups = new Set<number>();
      while (hosts.length < this.r) {
        const slot = randomInt(rand, p.peers);
        if (hosts.includes(slot)) continue;
        const g = groupOf(slot, p.groupSize);
        if (usedGroups.has(g) && usedGroups.size < groups) continue;
        hosts.push(slot);
        usedGroups.add(g);
      }
      this.holders.push(hosts);
      this.jobs.push([]);
      this.missing.push([]);
      for (const h of hosts) this.held[h].push(c);
    }
  }

  run(): DurabilityRun {
    const t = this.trace;
    let i = 0;
    for (;;) {
      const traceTime = i < t.count ? t.timeMs[i] : Infinity;
      const queueTime = this.queue.peekTime();
      if (Math.min(traceTime, queueTime) >= YEAR_MS) break;
      if (traceTime <= queueTime) {
        this.now = traceTime;
        this.applyTrace(t.kind[i] as TraceKind, t.subject[i], t.outage[i]);
        i++;
      } else {
        this.now = queueTime;
        const ev = this.queue.pop()!;
        if (ev.kind === "detect") this.detect(ev.id, ev.silence);
        else if (ev.kind === "job") this.finishJob(ev.job);
        else this.coldLoss(ev.chunk);
      }
    }
    const lostFiles = new Set<number>();
    for (let c = 0; c < this.lost.length; c++) if (this.lost[c]) lostFiles.add(Math.floor(c / this.p.chunksPerFile));
    this.out.lostFiles = lostFiles.size;
    return this.out;
  }

  private newIdentity(slot: number): number {
    const id = this.slotOf.length;
    this.slotOf.push(slot);
    this.dataLost.push(false);
    this.offlineCount.push(0);
    this.lastSeenMs.push(0);
    this.declaredDead.push(false);
    this.epoch.push(0);
    this.silence.push(0);
    this.held.push([]);
    this.waiting.push([]);
    for (let k = 0; k < this.p.repairConcurrency; k++) this.laneFreeAtMs.push(0);
    return id;
  }

  private online(id: number): boolean {
    return this.offlineCount[id] === 0 && !this.dataLost[id];
  }

  // ------------------------------------------------------------ hosts

  private applyTrace(kind: TraceKind, subject: number, outage: number): void {
    switch (kind) {
      case TraceKind.Off:
        return this.goOffline(this.slotIdentity[subject]);
      case TraceKind.On:
        return this.comeBack(this.slotIdentity[subject]);
      case TraceKind.Fail:
        return this.fail(subject);
      case TraceKind.GroupOff: {
        const ids = this.groupSlots(subject).map((s) => this.slotIdentity[s]);
        this.groupOutageIds.set(outage, ids);
        for (const id of ids) this.goOffline(id);
        return;
      }
      case TraceKind.GroupOn: {
        // Hosts replaced during the outage are gone; their replacements were never part of it.
        for (const id of this.groupOutageIds.get(outage) ?? []) if (!this.dataLost[id]) this.comeBack(id);
        this.groupOutageIds.delete(outage);
        return;
      }
      case TraceKind.GroupFail:
        for (const s of this.groupSlots(subject)) this.fail(s);
        return;
    }
  }

  private groupSlots(group: number): number[] {
    const first = group * this.p.groupSize;
    const slots: number[] = [];
    for (let s = first; s < Math.min(first + this.p.groupSize, this.p.peers); s++) slots.push(s);
    return slots;
  }

  /** The host falls silent: its last heartbeat was a uniform part of one interval ago; the detector fires deadAfterMs after it. */
  private startSilence(id: number): void {
    this.lastSeenMs[id] = this.now - this.heartbeatRand() * this.p.liveness.heartbeatIntervalMs;
    this.silence[id]++;
    this.queue.push(this.lastSeenMs[id] + this.deadAfter, { kind: "detect", id, silence: this.silence[id] });
  }

  private goOffline(id: number): void {
    if (this.dataLost[id]) return;
    this.offlineCount[id]++;
    if (this.offlineCount[id] > 1) return;
    this.epoch[id]++;
    if (!this.declaredDead[id]) this.startSilence(id);
  }

  private comeBack(id: number): void {
    if (this.dataLost[id] || this.offlineCount[id] === 0) return;
    this.offlineCount[id]--;
    if (this.offlineCount[id] > 0) return;
    this.silence[id]++; // any pending detection is void
    if (this.declaredDead[id]) {
      this.declaredDead[id] = false;
      for (const c of this.chunksOf(id)) {
        const m = this.missing[c].findIndex((e) => e.id === id);
        if (m >= 0) this.missing[c].splice(m, 1);
        this.reconcile(c, id);
      }
    }
    const waiting = this.waiting[id];
    this.waiting[id] = [];
    for (const c of waiting) this.reconcile(c);
  }

  /** The host in `slot` dies with its data; a fresh empty host replaces it at once. */
  private fail(slot: number): void {
    const id = this.slotIdentity[slot];
    this.out.permanentFailures++;
    const wasOnline = this.offlineCount[id] === 0;
    this.dataLost[id] = true;
    this.epoch[id]++;
    this.slotIdentity[slot] = this.newIdentity(slot);
    for (const c of this.chunksOf(id)) {
      if (this.lost[c]) continue;
      if (this.hasHostCopy(c)) continue;
      if (!this.coldAvailable(c)) this.markLost(c);
      // Only R2 has it now: if R2 loses it before a host copy exists again, it is gone.
      else if (this.coldLossAtMs[c] < YEAR_MS) this.queue.push(this.coldLossAtMs[c], { kind: "coldLoss", chunk: c });
    }
    if (this.declaredDead[id]) {
      // Already not counted: just drop the copies that no longer exist.
      for (const c of this.chunksOf(id)) this.removeHolder(c, id);
      this.held[id] = [];
    } else if (wasOnline) {
      this.startSilence(id);
    } // else: silent already, its detection is pending
    const waiting = this.waiting[id];
    this.waiting[id] = [];
    for (const c of waiting) this.reconcile(c);
  }

  private detect(id: number, silence: number): void {
    if (silence !== this.silence[id] || this.declaredDead[id]) return;
    if (livenessState(this.lastSeenMs[id], this.now, this.p.liveness) !== "dead") return;
    this.declaredDead[id] = true;
    this.out.detections++;
    if (!this.dataLost[id]) this.out.transientDetections++;
    this.backgroundFreeAtMs = Math.max(this.backgroundFreeAtMs, this.now) + this.backgroundMsPerDetection;
    const chunks = this.chunksOf(id);
    for (const c of chunks) {
      if (this.lost[c]) continue;
      this.missing[c].push({ id, sinceMs: this.lastSeenMs[id] });
      if (this.dataLost[id]) this.removeHolder(c, id);
      this.reconcile(c);
    }
    if (this.dataLost[id]) this.held[id] = [];
  }

  /** The sampled chunks this identity holds a copy of (compacting its lazily kept list). */
  private chunksOf(id: number): number[] {
    const seen = new Set<number>();
    const list: number[] = [];
    for (const c of this.held[id]) {
      if (seen.has(c) || !this.holders[c].includes(id)) continue;
      seen.add(c);
      list.push(c);
    }
    this.held[id] = list;
    return list.slice();
  }

  private removeHolder(c: number, id: number): void {
    const k = this.holders[c].indexOf(id);
    if (k >= 0) this.holders[c].splice(k, 1);
  }

  // ------------------------------------------------------------ chunks and repair

  private hasHostCopy(c: number): boolean {
    for (const h of this.holders[c]) if (!this.dataLost[h]) return true;
    return false;
  }

  private coldLoss(c: number): void {
    if (!this.lost[c] && !this.hasHostCopy(c)) this.markLost(c);
  }

  private coldAvailable(c: number): boolean {
    return this.p.coldTier && this.coldLossAtMs[c] > this.now;
  }

  private markLost(c: number): void {
    this.lost[c] = 1;
    this.out.lostChunks++;
    for (const job of this.jobs[c]) job.cancelled = true;
    this.jobs[c] = [];
  }

  /** What the region directory does for one chunk: trim extras, cancel needless repairs, start missing ones. */
  private reconcile(c: number, returning?: number): void {
    if (this.lost[c]) return;
    const holders = this.holders[c];
    let counted = 0;
    for (const h of holders) if (!this.declaredDead[h]) counted++;
    if (counted > this.r && returning !== undefined && holders.includes(returning)) {
      this.removeHolder(c, returning);
      this.out.trimmedReplicas++;
      counted--;
    }
    const jobs = this.jobs[c];
    while (jobs.length > 0 && counted + jobs.length > this.r) {
      jobs.pop()!.cancelled = true;
      this.out.repairsCancelled++;
    }
    for (let need = this.r - counted - jobs.length; need > 0; need--) {
      if (!this.startRepair(c, counted)) return;
    }
  }

  private startRepair(c: number, counted: number): boolean {
    const holders = this.holders[c];
    const sources = holders.filter((h) => this.online(h));
    let source: number;
    if (sources.length > 0) source = sources[randomInt(this.repairRand, sources.length)];
    else if (this.coldAvailable(c)) source = -1;
    else {
      // Nothing to copy from now: wait for an offline holder to return.
      for (const h of holders) if (!this.dataLost[h]) this.waiting[h].push(c);
      return false;
    }
    const target = this.pickTarget(c);
    if (target < 0) return false;
    const endangered = counted < this.r - 1;
    let startMs = Math.max(this.now, endangered ? 0 : this.backgroundFreeAtMs);
    const targetLane = this.freeLane(target);
    startMs = Math.max(startMs, this.laneFreeAtMs[targetLane]);
    const sourceLane = source >= 0 ? this.freeLane(source) : -1;
    if (sourceLane >= 0) startMs = Math.max(startMs, this.laneFreeAtMs[sourceLane]);
    const endMs = startMs + this.transferMs;
    this.laneFreeAtMs[targetLane] = endMs;
    if (sourceLane >= 0) this.laneFreeAtMs[sourceLane] = endMs;
    const job: Job = { chunk: c, source, target, sourceEpoch: source >= 0 ? this.epoch[source] : 0, targetEpoch: this.epoch[target], cancelled: false };
    this.jobs[c].push(job);
    this.queue.push(endMs, { kind: "job", job });
    return true;
  }

  private freeLane(id: number): number {
    const base = id * this.p.repairConcurrency;
    let best = base;
    for (let k = base + 1; k < base + this.p.repairConcurrency; k++) if (this.laneFreeAtMs[k] < this.laneFreeAtMs[best]) best = k;
    return best;
  }

  /** A random online host without the chunk, in a group none of its holders is in when one is found quickly. */
  private pickTarget(c: number): number {
    const holders = this.holders[c];
    const busy = this.jobs[c].map((j) => j.target);
    const groups = new Set(holders.map((h) => groupOf(this.slotOf[h], this.p.groupSize)));
    for (let attempt = 0; attempt < 100; attempt++) {
      const id = this.slotIdentity[randomInt(this.repairRand, this.p.peers)];
      if (!this.online(id) || holders.includes(id) || busy.includes(id)) continue;
      if (attempt < 50 && groups.has(groupOf(this.slotOf[id], this.p.groupSize))) continue;
      return id;
    }
    return -1;
  }

  private finishJob(job: Job): void {
    if (job.cancelled) return;
    const c = job.chunk;
    const list = this.jobs[c];
    list.splice(list.indexOf(job), 1);
    const targetOk = this.online(job.target) && this.epoch[job.target] === job.targetEpoch;
    const sourceOk = job.source < 0 ? this.coldAvailable(c) : this.online(job.source) && this.epoch[job.source] === job.sourceEpoch;
    if (targetOk && sourceOk) {
      this.holders[c].push(job.target);
      this.held[job.target].push(c);
      this.out.repairsCompleted++;
      if (job.source < 0) this.out.coldRestoreBytes += this.p.chunkBytes;
      else this.out.repairBytes += this.p.chunkBytes;
      const since = this.missing[c].shift();
      if (since) this.out.timeToRepairMs.push(this.now - since.sinceMs);
    } else {
      this.out.repairsFailed++;
    }
    this.reconcile(c);
  }
}

// ---------------------------------------------------------------- the table

/** One row of the durability table: observed from the sample, and the Markov estimate with the measured repair time. */
export interface DurabilityRow {
  replicationFactor: number;
  noCold: DurabilityRun;
  cold: DurabilityRun;
  /** Observed P(file lost within a year) = lost files / (files × years); and the one-sided 95 % upper bound. */
  observedNoCold: number;
  observedNoColdUpper95: number;
  observedCold: number;
  observedColdUpper95: number;
  /** Markov (birth–death) estimate of P(file lost within a year), from the no-cold run's mean time-to-repair; null without repairs to measure. */
  markovNoCold: number | null;
  /** The same, times P(R2 lost the cold copy within the year) (independence; an upper bound). */
  markovCold: number | null;
  markovChunkNoCold: number | null;
  mttdlYears: number | null;
  meanTimeToRepairMs: number | null;
  timeToRepairP50Ms: number | null;
  timeToRepairP99Ms: number | null;
  /** Repair bytes per host per day in the whole network, scaled from the sample (host-to-host + from R2), without / with cold tier. */
  repairBytesPerPeerPerDayNoCold: number;
  repairBytesPerPeerPerDayCold: number;
}

export function percentile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Upper end of the one-sided 95 % interval for a rate after `k` events in `n` trials (exact for k = 0: 1 − 0.05^(1/n); normal approximation otherwise). */
export function upper95(k: number, n: number): number {
  if (k === 0) return -Math.expm1(Math.log(0.05) / n);
  const p = k / n;
  return Math.min(1, p + 1.645 * Math.sqrt((p * (1 - p)) / n));
}

/** Per-replica permanent failure rate per year the Markov model uses: the hosts' own plus group destructions (treated as independent). */
export function markovFailureRatePerYear(p: DurabilityParams): number {
  return failureRatePerMs(p.annualFailureRate) * YEAR_MS + p.groupOutagesPerGroupPerYear * p.groupPermanentFraction;
}

/** Scales repair bytes of the sample to the whole network: real replicas (hosts × stored bytes / chunk size) over sampled ones. */
export function repairBytesPerPeerPerDay(p: DurabilityParams, run: DurabilityRun): number {
  const realReplicas = (p.peers * p.peerCapacityBytes * p.fillFraction) / p.chunkBytes;
  const sampledReplicas = run.chunks * run.replicationFactor;
  return ((run.repairBytes + run.coldRestoreBytes) * (realReplicas / sampledReplicas)) / p.peers / ((run.years * YEAR_MS) / DAY_MS);
}

export function durabilityRow(p: DurabilityParams, noCold: DurabilityRun, cold: DurabilityRun): DurabilityRow {
  const n = p.files * p.years;
  const ttr = [...noCold.timeToRepairMs].sort((a, b) => a - b);
  const meanTtr = ttr.length === 0 ? null : ttr.reduce((a, b) => a + b, 0) / ttr.length;
  const lambda = markovFailureRatePerYear(p);
  const r = p.replicationFactor;
  // With one replica nothing is repaired in time to matter: MTTDL = 1/λ whatever μ is.
  const mu = r === 1 ? 0 : meanTtr === null ? null : YEAR_MS / meanTtr;
  const mttdl = mu === null ? null : meanTimeToDataLoss(r, lambda, mu);
  const chunkP = mttdl === null ? null : lossProbability(1, mttdl);
  const r2YearLoss = p.r2AnnualLossRate;
  return {
    replicationFactor: r,
    noCold,
    cold,
    observedNoCold: noCold.lostFiles / n,
    observedNoColdUpper95: upper95(noCold.lostFiles, n),
    observedCold: cold.lostFiles / n,
    observedColdUpper95: upper95(cold.lostFiles, n),
    markovNoCold: chunkP === null ? null : anyOfLost(chunkP, p.chunksPerFile),
    markovCold: chunkP === null ? null : anyOfLost(chunkP * r2YearLoss, p.chunksPerFile),
    markovChunkNoCold: chunkP,
    mttdlYears: mttdl,
    meanTimeToRepairMs: meanTtr,
    timeToRepairP50Ms: percentile(ttr, 0.5),
    timeToRepairP99Ms: percentile(ttr, 0.99),
    repairBytesPerPeerPerDayNoCold: repairBytesPerPeerPerDay(p, noCold),
    repairBytesPerPeerPerDayCold: repairBytesPerPeerPerDay(p, cold),
  };
}

/** The whole table: every replication factor with and without the cold tier, all on the same host traces (paired). */
export function durabilityTable(base: DurabilityParams, replicationFactors: number[], onRow?: (row: DurabilityRow) => void): DurabilityRow[] {
  validateDurabilityParams(base);
  const traces = Array.from({ length: base.years }, (_, year) => yearTrace(base, year));
  return replicationFactors.map((r) => {
    const p = { ...base, replicationFactor: r };
    const row = durabilityRow(p, simulateDurability({ ...p, coldTier: false }, traces), simulateDurability({ ...p, coldTier: true }, traces));
    onRow?.(row);
    return row;
  });
}

/**
 * What happens to the hosts during a simulated period, independently of
 * what they store: transient outages (churn), permanent failures (disk or
 * host death, or the operator leaving for good) and optional correlated
 * outages of a whole host group (a rack, a cloud zone, one operator's
 * machines).
 *
 * Generated once per (seed, year) and replayed by every configuration that
 * is compared on it, so that a replication factor or the cold tier is the
 * only thing that differs between paired runs.
 *
 * Per host slot, an alternating renewal process: online for Exp(churn rate),
 * offline for Exp(1 / mean outage); a permanent failure at rate λ =
 * −ln(1 − AFR) per year competes at every moment, online or not (so that the
 * chance of a slot failing within a year is exactly the annual failure
 * rate). A failed host is replaced at once by a fresh, empty one in the same
 * slot — the network keeps its size. Group outages are Poisson per group;
 * each takes every host of the group offline for one shared Exp duration,
 * or with probability `groupPermanentFraction` destroys them all.
 */
import { exponential, type Rand } from "./random.js";

export const YEAR_MS = 365.25 * 24 * 3600_000;

/** Kinds of trace events. `ref` is the host slot, or for group events the group outage's number. */
export const TraceKind = { Off: 0, On: 1, Fail: 2, GroupOff: 3, GroupOn: 4, GroupFail: 5 } as const;
export type TraceKind = (typeof TraceKind)[keyof typeof TraceKind];

export interface TraceParams {
  peers: number;
  horizonMs: number;
  /** Transient outages per host per year. */
  churnPerPeerPerYear: number;
  /** Mean length of a transient outage (exponentially distributed). */
  meanOutageMs: number;
  /** Probability that a host dies (its data is lost) within a year, in [0, 1). */
  annualFailureRate: number;
  /** Hosts per correlated-failure group (slots [g·size, (g+1)·size)). */
  groupSize: number;
  /** Outages per group per year (0 disables correlated failures). */
  groupOutagesPerGroupPerYear: number;
  groupMeanOutageMs: number;
  /** Share of group outages that destroy every host of the group. */
  groupPermanentFraction: number;
}

export interface PeerTrace {
  count: number;
  timeMs: Float64Array;
  kind: Uint8Array;
  /** Host slot (Off, On, Fail) or group (GroupOff, GroupOn, GroupFail). */
  subject: Int32Array;
  /** Pairs a GroupOn with its GroupOff (the outage's number); 0 otherwise. */
  outage: Int32Array;
}

/** Permanent failure rate per ms from an annual failure probability. */
export function failureRatePerMs(annualFailureRate: number): number {
  return -Math.log1p(-annualFailureRate) / YEAR_MS;
}

export function groupOf(slot: number, groupSize: number): number {
  return Math.floor(slot / groupSize);
}

export function generatePeerTrace(p: TraceParams, rand: Rand): PeerTrace {
  const times: number[] = [];
  const kinds: number[] = [];
  const subjects: number[] = [];
  const outages: number[] = [];
  const emit = (t: number, kind: TraceKind, subject: number, outage = 0) => {
    if (t >= p.horizonMs) return;
    times.push(t);
    kinds.push(kind);
    subjects.push(subject);
    outages.push(outage);
  };
  const failRate = failureRatePerMs(p.annualFailureRate);
  const churnRate = p.churnPerPeerPerYear / YEAR_MS;
  const repairRate = 1 / p.meanOutageMs;

  for (let slot = 0; slot < p.peers; slot++) {
    let t = 0;
    while (t < p.horizonMs) {
      const toOutage = exponential(rand, churnRate);
      const toFailure = exponential(rand, failRate);
      if (toFailure <= toOutage) {
        t += toFailure;
        emit(t, TraceKind.Fail, slot);
        continue; // the replacement host starts online
      }
      t += toOutage;
      emit(t, TraceKind.Off, slot);
      const outageMs = exponential(rand, repairRate);
      const failureDuring = exponential(rand, failRate);
      if (failureDuring < outageMs) {
        t += failureDuring;
        emit(t, TraceKind.Fail, slot);
      } else {
        t += outageMs;
        emit(t, TraceKind.On, slot);
      }
    }
  }

  const groups = Math.ceil(p.peers / p.groupSize);
  const groupRate = p.groupOutagesPerGroupPerYear / YEAR_MS;
  let outageNo = 0;
  for (let g = 0; g < groups && groupRate > 0; g++) {
    let t = exponential(rand, groupRate);
    while (t < p.horizonMs) {
      if (rand() < p.groupPermanentFraction) {
        emit(t, TraceKind.GroupFail, g);
      } else {
        outageNo++;
        emit(t, TraceKind.GroupOff, g, outageNo);
        emit(t + exponential(rand, 1 / p.groupMeanOutageMs), TraceKind.GroupOn, g, outageNo);
      }
      t += exponential(rand, groupRate);
    }
  }

  // Sort by time (stable: equal times keep generation order, so an Off precedes its On).
  const order = Array.from({ length: times.length }, (_, i) => i);
  order.sort((a, b) => times[a] - times[b] || a - b);
  const trace: PeerTrace = {
    count: order.length,
    timeMs: new Float64Array(order.length),
    kind: new Uint8Array(order.length),
    subject: new Int32Array(order.length),
    outage: new Int32Array(order.length),
  };
  order.forEach((from, to) => {
    trace.timeMs[to] = times[from];
    trace.kind[to] = kinds[from];
    trace.subject[to] = subjects[from];
    trace.outage[to] = outages[from];
  });
  return trace;
}

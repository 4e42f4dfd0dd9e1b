/**
 * The durability SIMULATION (src/sim/durability.ts) and its Markov estimate
 * (src/sim/markov.ts). Expected values come from hand-derived formulas, never
 * from running the simulator: with repair too slow to matter a chunk is lost
 * exactly when every one of its r hosts dies, probability AFR^r; the
 * detector fires for an outage of length D when D exceeds the timeout minus
 * the heartbeat phase; the birth–death MTTDL has textbook closed forms for
 * r = 1, 2, 3. Populations are small (hundreds of peers) to keep this fast.
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_DURABILITY_PARAMS, durabilityTable, simulateDurability, validateDurabilityParams, yearTrace, type DurabilityParams } from "../../src/sim/durability.js";
import { anyOfLost, lossProbability, meanTimeToDataLoss } from "../../src/sim/markov.js";
import { TraceKind, YEAR_MS } from "../../src/sim/peer-trace.js";

const MIN = 60_000;

/** Small network, no churn, no failures: each test switches on what it studies. */
const base: DurabilityParams = {
  ...DEFAULT_DURABILITY_PARAMS,
  peers: 400,
  files: 400,
  chunksPerFile: 4,
  churnPerPeerPerYear: 0,
  annualFailureRate: 0,
  peerCapacityBytes: 1e11,
  seed: 7,
};

/** Repair so slow that nothing completes within the year (one 1 MiB chunk takes ~3 years). */
const noRepair = { repairBandwidthBytesPerSec: 0.01 };

/** |observed − expected| within 4.5 binomial standard deviations (a false alarm about once in 300,000 runs). */
function expectBinomial(lost: number, n: number, p: number) {
  const sd = Math.sqrt(n * p * (1 - p));
  expect(Math.abs(lost - n * p)).toBeLessThanOrEqual(4.5 * sd + 1);
}

describe("durability simulation", () => {
  it("loses nothing without permanent failures, even with heavy churn and one replica", () => {
    for (const r of [1, 2, 3]) {
      const run = simulateDurability({ ...base, replicationFactor: r, churnPerPeerPerYear: 20, meanOutageMs: 60 * MIN });
      expect(run.permanentFailures).toBe(0);
      expect(run.detections).toBeGreaterThan(0); // long outages were declared dead…
      expect(run.lostChunks).toBe(0); // …but their disks were intact
      expect(run.lostFiles).toBe(0);
    }
  });

  it("without repair a chunk is lost with probability AFR^r: r = 1 loses nearly everything, r = 3 less", () => {
    const afr = 0.9;
    const p = { ...base, ...noRepair, files: 2000, chunksPerFile: 1, annualFailureRate: afr };
    const r1 = simulateDurability({ ...p, replicationFactor: 1 });
    const r3 = simulateDurability({ ...p, replicationFactor: 3 });
    expect(r1.repairsCompleted + r3.repairsCompleted).toBe(0);
    expectBinomial(r1.lostFiles, 2000, afr);
    expectBinomial(r3.lostFiles, 2000, afr ** 3);
    expect(r3.lostFiles).toBeLessThan(r1.lostFiles);
  });

  it("never loses more with more replicas on the same seed (paired runs over one host trace)", () => {
    const p = { ...base, files: 1000, chunksPerFile: 2, annualFailureRate: 0.6, churnPerPeerPerYear: 6, meanOutageMs: 30 * MIN, repairBandwidthBytesPerSec: 0.1, repairConcurrency: 1 };
    const rows = durabilityTable(p, [1, 2, 3, 4, 5]);
    const lost = rows.map((row) => row.noCold.lostFiles);
    expect(lost[0]).toBeGreaterThan(lost[2]); // the setting does discriminate
    for (let i = 1; i < lost.length; i++) expect(lost[i]).toBeLessThanOrEqual(lost[i - 1]);
    // Every configuration saw the same hosts fail.
    expect(new Set(rows.flatMap((row) => [row.noCold.permanentFailures, row.cold.permanentFailures])).size).toBe(1);
  });

  it("with the cold tier nothing is lost unless R2 itself loses objects, then about AFR × P(R2 loss)", () => {
    const p = { ...base, ...noRepair, files: 2000, chunksPerFile: 1, annualFailureRate: 0.9, replicationFactor: 1, coldTier: true };
    const perfect = simulateDurability({ ...p, r2AnnualLossRate: 0 });
    expect(perfect.lostFiles).toBe(0);
    const elevenNines = simulateDurability(p);
    expect(elevenNines.lostFiles).toBe(0);
    // Nothing is ever restored in time, so a chunk is lost iff its host and its R2 copy are both gone by the end of the year.
    const leaky = simulateDurability({ ...p, r2AnnualLossRate: 0.5 });
    expectBinomial(leaky.lostFiles, 2000, 0.9 * 0.5);
  });

  it("restores from R2 when the last replica dies and repair works", () => {
    const p = { ...base, replicationFactor: 1, annualFailureRate: 0.5 };
    const cold = simulateDurability({ ...p, coldTier: true });
    const noCold = simulateDurability({ ...p, coldTier: false });
    expect(noCold.lostFiles).toBeGreaterThan(0);
    expect(cold.lostFiles).toBe(0);
    expect(cold.coldRestoreBytes).toBeGreaterThan(0);
    expect(noCold.coldRestoreBytes).toBe(0);
  });

  it("a transient outage shorter than the detection timeout causes no repair; longer ones do, as often as the timeout predicts", () => {
    const deadAfter = 6 * 30_000; // DEFAULT_PARAMS: 6 missed 30 s heartbeats
    const short = simulateDurability({ ...base, replicationFactor: 3, churnPerPeerPerYear: 100, meanOutageMs: 1000 });
    expect(short.detections).toBe(0);
    expect(short.repairsCompleted).toBe(0);
    expect(short.repairBytes).toBe(0);

    const mean = 10 * MIN;
    const p = { ...base, replicationFactor: 3, churnPerPeerPerYear: 100, meanOutageMs: mean };
    const long = simulateDurability(p);
    const trace = yearTrace(p, 0);
    let outages = 0;
    for (let i = 0; i < trace.count; i++) if (trace.kind[i] === TraceKind.Off) outages++;
    // The last heartbeat was U·30 s before the outage (U uniform): declared dead iff D > 180 s − U·30 s, D ~ Exp(mean).
    // P = ∫₀¹ exp(−(180 − 30u)/mean) du = exp(−180/mean) · (mean/30) · (exp(30/mean) − 1).
    const expected = Math.exp(-deadAfter / mean) * (mean / 30_000) * Math.expm1(30_000 / mean);
    expect(long.transientDetections / outages).toBeCloseTo(expected, 2);
    expect(long.repairBytes).toBeGreaterThan(0);
    expect(long.trimmedReplicas).toBeGreaterThan(0); // hosts came back to find their chunks already re-replicated
    expect(long.lostFiles).toBe(0);
  });

  it("measures time-to-repair from the silence: at least the detection timeout", () => {
    const run = simulateDurability({ ...base, replicationFactor: 3, annualFailureRate: 0.5 });
    expect(run.timeToRepairMs.length).toBeGreaterThan(0);
    expect(Math.min(...run.timeToRepairMs)).toBeGreaterThanOrEqual(180_000);
  });

  it("is reproducible: the same seed gives the same run, another seed another", () => {
    const p = { ...base, replicationFactor: 2, annualFailureRate: 0.3, churnPerPeerPerYear: 10 };
    expect(simulateDurability(p)).toEqual(simulateDurability(p));
    expect(simulateDurability({ ...p, seed: 8 })).not.toEqual(simulateDurability(p));
  });

  it("rejects nonsense parameters", () => {
    expect(() => validateDurabilityParams({ ...base, replicationFactor: 0 })).toThrow(RangeError);
    expect(() => validateDurabilityParams({ ...base, annualFailureRate: 1 })).toThrow(/annualFailureRate/);
    expect(() => validateDurabilityParams({ ...base, peers: 2, replicationFactor: 3 })).toThrow(/exceeds/);
  });
});

describe("Markov (birth–death) estimate", () => {
  const lambda = 0.05; // per year
  const mu = 1000; // per year

  it("matches the closed forms for r = 1, 2, 3", () => {
    expect(meanTimeToDataLoss(1, lambda, mu)).toBeCloseTo(1 / lambda, 9);
    // r = 2: MTTDL = (3λ + μ) / (2λ²) (mirrored pair with repair).
    expect(meanTimeToDataLoss(2, lambda, mu) / ((3 * lambda + mu) / (2 * lambda ** 2))).toBeCloseTo(1, 12);
    // r = 3, each missing replica repaired at rate μ: MTTDL = (11λ² + 7λμ + 2μ²) / (6λ³).
    const r3 = (11 * lambda ** 2 + 7 * lambda * mu + 2 * mu ** 2) / (6 * lambda ** 3);
    expect(meanTimeToDataLoss(3, lambda, mu) / r3).toBeCloseTo(1, 12);
    expect(meanTimeToDataLoss(3, 0, mu)).toBe(Infinity);
  });

  it("gives 1 − exp(−λT) for one replica and stays within 1 % of the exact two-replica transient solution", () => {
    expect(lossProbability(1, meanTimeToDataLoss(1, lambda, mu))).toBeCloseTo(1 - Math.exp(-lambda), 12);
    // r = 2 exactly: P(absorbed by T) = 1 − (s₁e^{s₂T} − s₂e^{s₁T}) / (s₁ − s₂), s₁,₂ the roots of s² + (3λ + μ)s + 2λ² = 0.
    // Moderate rates keep the exact formula free of cancellation.
    const l = 0.5;
    const m = 200;
    const b = 3 * l + m;
    const disc = Math.sqrt(b * b - 8 * l * l);
    const s1 = (-b + disc) / 2;
    const s2 = (-b - disc) / 2;
    const exact = 1 - (s1 * Math.exp(s2) - s2 * Math.exp(s1)) / (s1 - s2);
    const estimate = lossProbability(1, meanTimeToDataLoss(2, l, m));
    expect(Math.abs(estimate / exact - 1)).toBeLessThan(0.01);
  });

  it("combines chunks of a file without cancellation", () => {
    expect(anyOfLost(0.5, 2)).toBeCloseTo(0.75, 12);
    expect(anyOfLost(1e-20, 8)).toBeCloseTo(8e-20, 30);
    expect(anyOfLost(1, 3)).toBe(1);
  });

  it("the table's r = 1 estimate is AFR per chunk, independent of repair", () => {
    const [row] = durabilityTable({ ...base, annualFailureRate: 0.2, files: 50, chunksPerFile: 3 }, [1]);
    expect(row.markovChunkNoCold).toBeCloseTo(0.2, 12);
    expect(row.markovNoCold).toBeCloseTo(1 - 0.8 ** 3, 12);
    expect(YEAR_MS).toBe(365.25 * 86_400_000);
  });
});

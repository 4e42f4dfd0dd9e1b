/**
 * The auction (src/core/auction.ts) against exact answers: the Hungarian
 * method (src/core/hungarian.ts), itself checked against brute force on
 * tiny instances, and brute force directly where conflict groups make the
 * Hungarian method inapplicable. Instances are random but seeded, so a
 * failure reproduces; each check names its seed.
 *
 * What is asserted is what the module proves: value ≥ optimum − gapBound
 * (n·ε), the exact optimum for integer benefits (final ε < 1/n), every
 * capacity, forbidden pair and conflict group respected, a reason for every
 * item left out, and quick, clear answers on degenerate input. With conflict
 * groups the auction is a heuristic: only feasibility (and never beating the
 * true optimum) is asserted.
 */
import { describe, expect, it } from "vitest";
import { auction, type AssignmentProblem, type AuctionResult, type Benefit } from "../../src/core/auction.js";
import { hungarian } from "../../src/core/hungarian.js";
import { mulberry32 as prng } from "../../src/core/random.js";

interface Shape {
  items: number;
  bidders: number;
  maxCapacity: number;
  /** Probability that a pair is allowed. */
  density: number;
  integer: boolean;
  maxValue: number;
  /** Items per group (0: no groups) and bidders per host. */
  groupSize?: number;
  hosts?: number;
}

function randomProblem(seed: number, shape: Shape): AssignmentProblem {
  const rand = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const items = Array.from({ length: shape.items }, (_, i) => ({ id: `i${i}`, ...(shape.groupSize ? { group: `g${Math.floor(i / shape.groupSize)}` } : {}) }));
  const bidders = Array.from({ length: shape.bidders }, (_, j) => ({ id: `b${j}`, capacity: int(0, shape.maxCapacity), ...(shape.hosts ? { host: `h${int(0, shape.hosts - 1)}` } : {}) }));
  const benefits = new Map<string, Benefit[]>();
  for (const item of items) {
    const list: Benefit[] = [];
    for (const b of bidders) {
      if (rand() >= shape.density) continue;
      // Some non-positive values: such pairs must never be taken.
      const value = shape.integer ? int(-2, shape.maxValue) : (rand() - 0.05) * shape.maxValue;
      list.push({ bidder: b.id, value });
    }
    benefits.set(item.id, list);
  }
  return { items, bidders, benefits };
}

/** Exhaustive optimum, honouring capacities, forbidden pairs and conflict groups (tiny instances only). */
function bruteForce(problem: AssignmentProblem): number {
  const { items, bidders } = problem;
  const benefits = problem.benefits as Map<string, Benefit[]>;
  const used = new Map(bidders.map((b) => [b.id, 0]));
  const hostOf = new Map(bidders.map((b) => [b.id, b.host ?? `own:${b.id}`]));
  const capOf = new Map(bidders.map((b) => [b.id, b.capacity]));
  const taken = new Set<string>(); // `${group}|${host}`
  let best = 0;
  const visit = (k: number, total: number) => {
    if (k === items.length) {
      best = Math.max(best, total);
      return;
    }
    visit(k + 1, total); // leave item k out
    const group = items[k].group;
    for (const { bidder, value } of benefits.get(items[k].id) ?? []) {
      if (used.get(bidder)! >= capOf.get(bidder)!) continue;
      const key = `${group}|${hostOf.get(bidder)}`;
      if (group !== undefined && taken.has(key)) continue;
      used.set(bidder, used.get(bidder)! + 1);
      if (group !== undefined) taken.add(key);
      visit(k + 1, total + value);
      used.set(bidder, used.get(bidder)! - 1);
      if (group !== undefined) taken.delete(key);
    }
  };
  visit(0, 0);
  return best;
}

/** Checks an assignment against the problem's rules independently of the solver; returns its value. */
function checkFeasible(problem: AssignmentProblem, assignment: Map<string, string>): number {
  const benefits = problem.benefits as Map<string, Benefit[]>;
  const capOf = new Map(problem.bidders.map((b) => [b.id, b.capacity]));
  const hostOf = new Map(problem.bidders.map((b) => [b.id, b.host ?? `own:${b.id}`]));
  const groupOf = new Map(problem.items.map((it) => [it.id, it.group]));
  const load = new Map<string, number>();
  const groupHosts = new Set<string>();
  let total = 0;
  for (const [item, bidder] of assignment) {
    const entry = benefits.get(item)?.find((b) => b.bidder === bidder);
    expect(entry, `${item} → ${bidder} is not an allowed pair`).toBeDefined();
    expect(entry!.value, `${item} → ${bidder} has no gain`).toBeGreaterThan(0);
    total += entry!.value;
    load.set(bidder, (load.get(bidder) ?? 0) + 1);
    const group = groupOf.get(item);
    if (group !== undefined) {
      const key = `${group}|${hostOf.get(bidder)}`;
      expect(groupHosts.has(key), `two items of ${group} on host ${hostOf.get(bidder)}`).toBe(false);
      groupHosts.add(key);
    }
  }
  for (const [bidder, n] of load) expect(n, `${bidder} over capacity`).toBeLessThanOrEqual(capOf.get(bidder)!);
  return total;
}

/** Every item is either assigned or reported once with a reason. */
function checkAccounted(problem: AssignmentProblem, result: AuctionResult): void {
  const out = new Set(result.unassigned.map((u) => u.item));
  expect(out.size).toBe(result.unassigned.length);
  for (const it of problem.items) expect(result.assignment.has(it.id) !== out.has(it.id), `${it.id} assigned and reported unassigned, or neither`).toBe(true);
}

describe("hungarian (the reference)", () => {
  it("matches brute force on 300 tiny random instances", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const problem = randomProblem(seed, { items: 1 + (seed % 6), bidders: 1 + (seed % 4), maxCapacity: 2, density: 0.7, integer: seed % 2 === 0, maxValue: 20 });
      const exact = hungarian(problem);
      const value = checkFeasible(problem, exact.assignment);
      expect(value, `seed ${seed}`).toBeCloseTo(exact.totalValue, 9);
      expect(exact.totalValue, `seed ${seed}`).toBeCloseTo(bruteForce(problem), 9);
    }
  });

  it("rejects conflict groups instead of ignoring them", () => {
    expect(() => hungarian({ items: [{ id: "a", group: "g" }], bidders: [], benefits: new Map() })).toThrow(RangeError);
  });
});

describe("auction against exact optima", () => {
  it("is exactly optimal on 400 random integer instances (final ε < 1/n), within capacities and allowed pairs", () => {
    for (let seed = 1; seed <= 400; seed++) {
      const problem = randomProblem(1000 + seed, {
        items: 1 + (seed % 40),
        bidders: 1 + (seed % 11),
        maxCapacity: 1 + (seed % 5),
        density: 0.15 + (seed % 7) / 10,
        integer: true,
        maxValue: 1 + (seed % 3) * 50,
      });
      const result = auction(problem);
      const exact = hungarian(problem);
      expect(result.converged, `seed ${seed}`).toBe(true);
      expect(result.epsilon * problem.items.length, `seed ${seed}`).toBeLessThan(1);
      expect(checkFeasible(problem, result.assignment), `seed ${seed}`).toBe(result.totalValue);
      expect(result.totalValue, `seed ${seed}`).toBe(exact.totalValue);
      checkAccounted(problem, result);
    }
  });

  it("is within n·ε of the optimum on 300 random float instances, also with a coarse final ε", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const problem = randomProblem(5000 + seed, { items: 2 + (seed % 35), bidders: 1 + (seed % 9), maxCapacity: 1 + (seed % 4), density: 0.2 + (seed % 6) / 10, integer: false, maxValue: 10 });
      const coarse = seed % 3 === 0;
      const result = auction(problem, coarse ? { epsilonFinal: 0.5 } : {});
      const optimum = hungarian(problem).totalValue;
      expect(result.converged, `seed ${seed}`).toBe(true);
      expect(result.gapBound, `seed ${seed}`).toBeCloseTo(problem.items.length * result.epsilon, 12);
      expect(checkFeasible(problem, result.assignment), `seed ${seed}`).toBeCloseTo(result.totalValue, 9);
      expect(result.totalValue, `seed ${seed}`).toBeGreaterThanOrEqual(optimum - result.gapBound! - 1e-9);
      expect(result.totalValue, `seed ${seed}`).toBeLessThanOrEqual(optimum + 1e-9);
      checkAccounted(problem, result);
    }
  });

  it("matches brute force on 300 tiny instances without groups", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const problem = randomProblem(9000 + seed, { items: 1 + (seed % 6), bidders: 1 + (seed % 4), maxCapacity: 2, density: 0.6, integer: true, maxValue: 9 });
      expect(auction(problem).totalValue, `seed ${seed}`).toBe(bruteForce(problem));
    }
  });

  it("keeps every conflict group off shared hosts and never beats the true optimum (300 tiny instances with groups)", () => {
    let optimal = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const problem = randomProblem(20_000 + seed, {
        items: 2 + (seed % 6),
        bidders: 2 + (seed % 4),
        maxCapacity: 3,
        density: 0.8,
        integer: true,
        maxValue: 9,
        groupSize: 2 + (seed % 2),
        hosts: 1 + (seed % 3),
      });
      const result = auction(problem);
      expect(result.gapBound, "no bound is claimed with groups").toBeNull();
      const value = checkFeasible(problem, result.assignment);
      expect(value).toBe(result.totalValue);
      const best = bruteForce(problem);
      expect(value, `seed ${seed}`).toBeLessThanOrEqual(best);
      if (value === best) optimal++;
      checkAccounted(problem, result);
    }
    // Not a guarantee, but a heuristic that were mostly wrong would be a bug.
    expect(optimal).toBeGreaterThan(150);
  });

  it("is exact on a 300 × 60 sparse instance (Hungarian) and feasible, converged, on 2,000 × 200", () => {
    const problem = randomProblem(77, { items: 300, bidders: 60, maxCapacity: 6, density: 0.1, integer: true, maxValue: 1000 });
    const result = auction(problem);
    expect(result.totalValue).toBe(hungarian(problem).totalValue);
    const big = randomProblem(78, { items: 2000, bidders: 200, maxCapacity: 14, density: 0.1, integer: true, maxValue: 1000 });
    const bigResult = auction(big);
    expect(bigResult.converged).toBe(true);
    expect(checkFeasible(big, bigResult.assignment)).toBe(bigResult.totalValue);
    checkAccounted(big, bigResult);
  });
});

describe("auction on degenerate input", () => {
  const items = (n: number, group?: string) => Array.from({ length: n }, (_, i) => ({ id: `i${i}`, ...(group ? { group } : {}) }));

  it("no items, or no bidders: an empty or all-unassigned answer", () => {
    const empty = auction({ items: [], bidders: [{ id: "b", capacity: 3 }], benefits: new Map() });
    expect(empty).toMatchObject({ totalValue: 0, unassigned: [], converged: true });
    expect(empty.assignment.size).toBe(0);
    const none = auction({ items: items(3), bidders: [], benefits: {} });
    expect(none.assignment.size).toBe(0);
    expect(none.unassigned).toEqual(["i0", "i1", "i2"].map((item) => ({ item, reason: "no_candidates" })));
  });

  it("all-equal benefits: fills capacity and leaves exactly the surplus out as outbid", () => {
    const bidders = [
      { id: "a", capacity: 30 },
      { id: "b", capacity: 20 },
    ];
    const list = bidders.map((b) => ({ bidder: b.id, value: 7 }));
    const problem = { items: items(80), bidders, benefits: new Map(items(80).map((it) => [it.id, list])) };
    const result = auction(problem);
    expect(result.converged).toBe(true);
    expect(result.totalValue).toBe(50 * 7);
    expect(checkFeasible(problem, result.assignment)).toBe(350);
    expect(result.unassigned).toHaveLength(30);
    expect(new Set(result.unassigned.map((u) => u.reason))).toEqual(new Set(["outbid"]));
  });

  it("zero capacity and non-positive gains are reasons, not assignments", () => {
    const result = auction({
      items: items(3),
      bidders: [
        { id: "full", capacity: 0 },
        { id: "open", capacity: 5 },
      ],
      benefits: {
        i0: [{ bidder: "full", value: 9 }],
        i1: [
          { bidder: "open", value: 0 },
          { bidder: "full", value: 3 },
        ],
        i2: [{ bidder: "open", value: -4 }],
      },
    });
    expect(result.assignment.size).toBe(0);
    expect(result.unassigned).toEqual([
      { item: "i0", reason: "no_candidates" },
      { item: "i1", reason: "no_gain" },
      { item: "i2", reason: "no_gain" },
    ]);
  });

  it("infeasible conflict groups: three replicas, two hosts, one replica left out as a conflict", () => {
    const bidders = [
      { id: "a1", capacity: 5, host: "A" },
      { id: "a2", capacity: 5, host: "A" },
      { id: "b1", capacity: 5, host: "B" },
    ];
    const list = bidders.map((b) => ({ bidder: b.id, value: 1 }));
    const problem = { items: items(3, "chunk"), bidders, benefits: new Map(items(3).map((it) => [it.id, list])) };
    const result = auction(problem);
    expect(result.assignment.size).toBe(2);
    expect(checkFeasible(problem, result.assignment)).toBe(2);
    expect(result.unassigned).toHaveLength(1);
    expect(result.unassigned[0].reason).toBe("conflict");
  });

  it("a bid cap stops the run with a feasible partial answer and says so", () => {
    const problem = randomProblem(4242, { items: 200, bidders: 10, maxCapacity: 10, density: 0.9, integer: true, maxValue: 100 });
    const result = auction(problem, { maxBids: 50 });
    expect(result.converged).toBe(false);
    expect(result.bids + result.reverseSteps).toBeLessThanOrEqual(50);
    expect(result.gapBound).toBeNull();
    expect(result.unassigned.some((u) => u.reason === "bid_limit")).toBe(true);
    checkFeasible(problem, result.assignment);
    checkAccounted(problem, result);
  });

  it("a heavily oversubscribed tie-laden instance still ends quickly and optimally", () => {
    // 1,000 identical items want 3 slots: the classic price war that ε-scaling exists for.
    const problem = { items: items(1000), bidders: [{ id: "b", capacity: 3 }], benefits: new Map(items(1000).map((it) => [it.id, [{ bidder: "b", value: 1_000_000 }]])) };
    const result = auction(problem);
    expect(result.converged).toBe(true);
    expect(result.totalValue).toBe(3_000_000);
    expect(result.unassigned).toHaveLength(997);
  });

  it("rejects malformed input with labelled errors", () => {
    const ok = { items: items(1), bidders: [{ id: "b", capacity: 1 }] };
    expect(() => auction({ ...ok, items: [...items(1), ...items(1)], benefits: {} })).toThrow(/duplicate item/);
    expect(() => auction({ ...ok, bidders: [{ id: "b", capacity: 1.5 }], benefits: {} })).toThrow(RangeError);
    expect(() => auction({ ...ok, benefits: { i0: [{ bidder: "nobody", value: 1 }] } })).toThrow(/unknown bidder/);
    expect(() => auction({ ...ok, benefits: { i9: [] } })).toThrow(/unknown item/);
    expect(() => auction({ ...ok, benefits: { i0: [{ bidder: "b", value: NaN }] } })).toThrow(/finite/);
    expect(() =>
      auction({
        ...ok,
        benefits: {
          i0: [
            { bidder: "b", value: 1 },
            { bidder: "b", value: 2 },
          ],
        },
      }),
    ).toThrow(/twice/);
    expect(() => auction({ ...ok, benefits: {} }, { epsilonFinal: 0 })).toThrow(RangeError);
  });
});

/**
 * The exact answer to the auction's problem (src/core/auction.ts), for tests
 * and benchmarks to measure the auction against: the Hungarian method
 * (Kuhn 1955, Munkres 1957) in its O(n²·m) shortest-augmenting-path form
 * with row and column potentials, for a rectangular cost matrix with
 * n rows ≤ m columns.
 *
 * The b-matching becomes such a matrix by expansion: one column per unit of
 * a bidder's capacity (capped at n: no more can be used), and one "stay
 * unassigned" column per item, worth 0 to every item, so that every row can
 * always be matched and leaving an item out is a choice the optimum can
 * make. A forbidden pair costs more than every allowed choice together, so
 * an optimum never takes it while an unassigned column is free (one always
 * is: there are n of them).
 *
 * Memory and time grow as n·(S + n) and n²·(S + n): fine for the few hundred
 * items a ground truth needs, not for production sizes. Conflict groups are
 * not modelled (they make the problem something other than an assignment
 * problem); a problem with groups is rejected rather than answered wrongly.
 *
 * Portable core: no Node modules.
 */
import type { AssignmentProblem, Benefit, Benefits } from "./auction.js";

export interface ExactAssignment {
  /** item id → bidder id, for assigned items. */
  assignment: Map<string, string>;
  totalValue: number;
}

function entries(benefits: Benefits, id: string): readonly Benefit[] {
  if (benefits instanceof Map) return benefits.get(id) ?? [];
  const record = benefits as Readonly<Record<string, readonly Benefit[]>>;
  return Object.hasOwn(record, id) ? record[id] : [];
}

/** The maximum-value assignment (items may stay unassigned, worth 0), exactly. */
export function hungarian(problem: AssignmentProblem): ExactAssignment {
  const { items, bidders, benefits } = problem;
  const n = items.length;
  if (items.some((it) => it.group !== undefined)) throw new RangeError("hungarian: conflict groups are not supported (use brute force as the reference)");
  const bidderIndex = new Map(bidders.map((b, j) => [b.id, j]));

  // Columns: capacity copies of each bidder, then n "unassigned" columns (bidder -1).
  const colBidder: number[] = [];
  bidders.forEach((b, j) => {
    for (let k = 0; k < Math.min(b.capacity, n); k++) colBidder.push(j);
  });
  for (let k = 0; k < n; k++) colBidder.push(-1);
  const m = colBidder.length;

  // value[i·B + j]: NaN where forbidden.
  const B = bidders.length;
  const value = new Float64Array(n * B).fill(NaN);
  let scale = 1;
  items.forEach((it, i) => {
    for (const { bidder, value: v } of entries(benefits, it.id)) {
      const j = bidderIndex.get(bidder);
      if (j === undefined) throw new RangeError(`hungarian: unknown bidder ${JSON.stringify(bidder)}`);
      value[i * B + j] = v;
      scale += Math.abs(v);
    }
  });
  const forbiddenCost = 2 * scale;
  // Minimise cost = −value.
  const cost = (i: number, col: number): number => {
    const j = colBidder[col];
    if (j < 0) return 0;
    const v = value[i * B + j];
    return Number.isNaN(v) ? forbiddenCost : -v;
  };

  // 1-based rows/columns; column 0 is the virtual start of each augmenting path.
  const u = new Float64Array(n + 1);
  const v = new Float64Array(m + 1);
  const rowOf = new Int32Array(m + 1); // column → row (0: free)
  const way = new Int32Array(m + 1);
  const minv = new Float64Array(m + 1);
  const used = new Uint8Array(m + 1);
  for (let i = 1; i <= n; i++) {
    rowOf[0] = i;
    let j0 = 0;
    minv.fill(Infinity);
    used.fill(0);
    do {
      used[j0] = 1;
      const i0 = rowOf[j0];
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const reduced = cost(i0 - 1, j - 1) - u[i0] - v[j];
        if (reduced < minv[j]) {
          minv[j] = reduced;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (let j = 0; j <= m; j++) {
        if (used[j]) {
          u[rowOf[j]] += delta;
          v[j] -= delta;
        } else minv[j] -= delta;
      }
      j0 = j1;
    } while (rowOf[j0] !== 0);
    // Flip the augmenting path back to its start.
    do {
      const j1 = way[j0];
      rowOf[j0] = rowOf[j1];
      j0 = j1;
    } while (j0 !== 0);
  }

  const assignment = new Map<string, string>();
  let totalValue = 0;
  for (let col = 1; col <= m; col++) {
    const i = rowOf[col] - 1;
    const j = colBidder[col - 1];
    if (i < 0 || j < 0) continue;
    const val = value[i * B + j];
    // An optimum never takes a forbidden pair or a loss; guard anyway so the reference cannot report one.
    if (Number.isNaN(val)) throw new Error("hungarian: internal error, a forbidden pair was chosen");
    if (val <= 0) continue;
    assignment.set(items[i].id, bidders[j].id);
    totalValue += val;
  }
  return { assignment, totalValue };
}

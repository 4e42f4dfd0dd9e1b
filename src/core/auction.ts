/**
 * Who gets which piece of work: Bertsekas' auction algorithm for the
 * assignment problem (D. P. Bertsekas, "The auction algorithm: a distributed
 * relaxation method for the assignment problem", Annals of OR 14, 1988; and
 * "Network Optimization: Continuous and Discrete Models", 1998, ch. 7), with
 * ε-scaling, generalised to what DESIGN "Scheduling" needs:
 *
 * - **Items** (chunk replicas to place, chunk requests, repair jobs) bid for
 *   **bidders** (peers, sources). A bidder may win up to `capacity` items:
 *   it owns `capacity` unit "slots", each with its own price, kept in a small
 *   min-heap so an item sees the bidder's cheapest slot (the one it would
 *   win) and the next one (its second-best choice may be the same bidder).
 * - **Forbidden pairs** are simply absent benefit entries. Entries with a
 *   value ≤ 0 are dropped too: leaving an item unassigned is worth 0, so such
 *   a pair never beats staying unassigned. Express scores as positive gains
 *   (e.g. horizon − expected completion time).
 * - **Conflict groups**: items sharing a `group` (the replicas of one chunk)
 *   never go to bidders sharing a `host`. See "Conflict groups" below.
 *
 * The problem solved is the maximum-value b-matching: maximise the sum of
 * the benefits of the chosen pairs, every item on at most one bidder, every
 * bidder within its capacity; any item may stay unassigned (value 0).
 *
 * Why it is correct (no conflict groups). Prices p(s) ≥ 0 on slots and an
 * item's profit π(i) = max(0, max over slots s of a(i,s) − p(s)) form a
 * feasible dual of that problem's LP, so OPT ≤ Σπ + Σp. The auction ends in
 * ε-complementary slackness: every assigned item is within ε of its best
 * profit, every unassigned item could gain at most ε, and every slot left
 * free has price 0. Then Σπ + Σp ≤ value + n·ε, so
 *
 *     value ≥ OPT − n·ε        (n = number of items)
 *
 * and with integer benefits and a final ε < 1/n the result is optimal.
 * ε-scaling (solve with a coarse ε, keep the prices, shrink ε, repeat) makes
 * this fast; carrying prices over can leave a free slot with a positive
 * price, which would break the bound, so every phase ends with reverse-
 * auction steps (Bertsekas & Castañon, "Reverse auction and the solution of
 * inequality constrained assignment problems", SIAM J. Optim. 3, 1993) that
 * lower such a price to 0 or fill the slot with the item that gains most.
 * (Done only after the last phase, those steps would have to undo the
 * coarse phases' overshoot ε at a time: many times slower.)
 *
 * Conflict groups (heuristic). A bid never targets a host already holding
 * another item of the same group, so the returned assignment always honours
 * the constraint, exactly. But the constraint couples items, so the problem
 * is no longer a b-matching and the n·ε bound does not hold: the result is
 * feasible and usually good, not provably near-optimal (`gapBound` is null).
 *
 * Termination. Every forward bid raises one slot price by at least ε, and no
 * bid is made at a price above the largest benefit C, so a phase makes at
 * most S·(C/ε + 1) bids (S = usable slots); every reverse step raises one
 * item's profit by at least ε (at most n·C/ε of them). Those bounds are
 * finite on every input (no bidders, ties, zero capacity, infeasible
 * groups) but can be huge for a tiny ε, so `maxBids` caps bids + reverse
 * steps; when the cap stops the run the assignment is still feasible, the
 * items still waiting are reported with reason "bid_limit", and
 * `converged` is false.
 *
 * Portable core: no Node modules; runs in workerd, Node and browsers.
 */

export interface AuctionItem {
  id: string;
  /** Items with the same group never go to bidders with the same host (e.g. the replicas of one chunk). */
  group?: string;
}

export interface AuctionBidder {
  id: string;
  /** How many items this bidder may win (an integer ≥ 0). */
  capacity: number;
  /** Failure domain; bidders without a host are each their own host. */
  host?: string;
}

export interface Benefit {
  bidder: string;
  /** Gain of giving the item to this bidder; only values > 0 are ever chosen. */
  value: number;
}

/** item id → its candidate bidders; a bidder absent from an item's list is forbidden for it. */
export type Benefits = ReadonlyMap<string, readonly Benefit[]> | Readonly<Record<string, readonly Benefit[]>>;

export interface AssignmentProblem {
  items: readonly AuctionItem[];
  bidders: readonly AuctionBidder[];
  benefits: Benefits;
}

export interface AuctionOptions {
  /**
   * ε of the last phase. Default: 1/(n+1) when every benefit is an integer
   * (so the result is optimal), else C·10⁻⁶/(n+1) (gap ≤ 10⁻⁶ of the
   * largest benefit C).
   */
  epsilonFinal?: number;
  /** ε shrinks by this factor between phases (default 6; Bertsekas suggests 4–10). */
  scalingFactor?: number;
  /** Cap on forward bids + reverse steps over the whole run (default 200·(n+S) + 100,000). */
  maxBids?: number;
}

/**
 * Why an item is left unassigned:
 * - `no_candidates`: no benefit entry names a bidder with capacity;
 * - `no_gain`: every such entry has a value ≤ 0;
 * - `conflict`: every worthwhile candidate is on a host that holds another item of its group;
 * - `outbid`: its candidates' capacity went to items that gain more from it;
 * - `bid_limit`: `maxBids` stopped the auction before the item settled.
 */
export type UnassignedReason = "no_candidates" | "no_gain" | "conflict" | "outbid" | "bid_limit";

export interface AuctionResult {
  /** item id → bidder id, for assigned items. */
  assignment: Map<string, string>;
  totalValue: number;
  /** ε of the last phase run. */
  epsilon: number;
  /** OPT − totalValue ≤ gapBound (= n·ε) when converged without conflict groups; otherwise null. */
  gapBound: number | null;
  unassigned: Array<{ item: string; reason: UnassignedReason }>;
  phases: number;
  bids: number;
  reverseSteps: number;
  converged: boolean;
}

export const DEFAULT_SCALING_FACTOR = 6;

function benefitsOf(benefits: Benefits, id: string): readonly Benefit[] | undefined {
  return benefits instanceof Map ? benefits.get(id) : Object.hasOwn(benefits, id) ? (benefits as Record<string, readonly Benefit[]>)[id] : undefined;
}

function benefitKeys(benefits: Benefits): Iterable<string> {
  return benefits instanceof Map ? benefits.keys() : Object.keys(benefits);
}

/** Interns strings to dense integers 0, 1, 2, … (`size` of them so far). */
function interner(): { id: (key: string) => number; readonly size: number } {
  const ids = new Map<string, number>();
  return {
    id(key) {
      let id = ids.get(key);
      if (id === undefined) ids.set(key, (id = ids.size));
      return id;
    },
    get size() {
      return ids.size;
    },
  };
}

/** The problem in flat arrays: items' candidate lists (CSR), bidders' reverse lists, slots. */
interface Compiled {
  n: number;
  m: number;
  itemStart: Int32Array;
  edgeBidder: Int32Array;
  edgeValue: Float64Array;
  bidderStart: Int32Array;
  revItem: Int32Array;
  revValue: Float64Array;
  /** Usable slots per bidder: min(capacity, number of items that want it). */
  slots: Int32Array;
  slotStart: Int32Array;
  S: number;
  itemGroup: Int32Array;
  bidderHost: Int32Array;
  hostCount: number;
  hasGroups: boolean;
  maxValue: number;
  integral: boolean;
  /** Per item: had any entry naming a bidder with capacity (before dropping values ≤ 0). */
  hadCandidates: Uint8Array;
}

function compile(problem: AssignmentProblem): Compiled {
  const { items, bidders, benefits } = problem;
  const n = items.length;
  const m = bidders.length;
  const itemIndex = new Map<string, number>();
  items.forEach((it, i) => {
    if (typeof it.id !== "string") throw new TypeError(`auction: items[${i}].id must be a string`);
    if (itemIndex.has(it.id)) throw new RangeError(`auction: duplicate item id ${JSON.stringify(it.id)}`);
    itemIndex.set(it.id, i);
  });
  const bidderIndex = new Map<string, number>();
  bidders.forEach((b, j) => {
    if (typeof b.id !== "string") throw new TypeError(`auction: bidders[${j}].id must be a string`);
    if (bidderIndex.has(b.id)) throw new RangeError(`auction: duplicate bidder id ${JSON.stringify(b.id)}`);
    if (!Number.isInteger(b.capacity) || b.capacity < 0) throw new RangeError(`auction: bidder ${JSON.stringify(b.id)} capacity must be an integer ≥ 0, got ${b.capacity}`);
    bidderIndex.set(b.id, j);
  });
  for (const key of benefitKeys(benefits)) {
    if (!itemIndex.has(key)) throw new RangeError(`auction: benefits name unknown item ${JSON.stringify(key)}`);
  }

  const itemStart = new Int32Array(n + 1);
  const bidderDegree = new Int32Array(m);
  const hadCandidates = new Uint8Array(n);
  const edges: number[] = [];
  const values: number[] = [];
  const seen = new Int32Array(m).fill(-1);
  let maxValue = 0;
  let integral = true;
  for (let i = 0; i < n; i++) {
    itemStart[i] = edges.length;
    for (const { bidder, value } of benefitsOf(benefits, items[i].id) ?? []) {
      const j = bidderIndex.get(bidder);
      if (j === undefined) throw new RangeError(`auction: item ${JSON.stringify(items[i].id)} names unknown bidder ${JSON.stringify(bidder)}`);
      if (typeof value !== "number" || !Number.isFinite(value))
        throw new RangeError(`auction: benefit of ${JSON.stringify(items[i].id)} → ${JSON.stringify(bidder)} must be a finite number, got ${value}`);
      if (seen[j] === i) throw new RangeError(`auction: item ${JSON.stringify(items[i].id)} lists bidder ${JSON.stringify(bidder)} twice`);
      seen[j] = i;
      if (bidders[j].capacity === 0) continue;
      hadCandidates[i] = 1;
      if (value <= 0) continue;
      edges.push(j);
      values.push(value);
      bidderDegree[j]++;
      if (value > maxValue) maxValue = value;
      if (!Number.isInteger(value)) integral = false;
    }
  }
  itemStart[n] = edges.length;

  // Reverse lists (bidder → items), for the reverse steps.
  const bidderStart = new Int32Array(m + 1);
  for (let j = 0; j < m; j++) bidderStart[j + 1] = bidderStart[j] + bidderDegree[j];
  const fill = bidderStart.slice(0, m);
  const revItem = new Int32Array(edges.length);
  const revValue = new Float64Array(edges.length);
  for (let i = 0; i < n; i++) {
    for (let e = itemStart[i]; e < itemStart[i + 1]; e++) {
      const k = fill[edges[e]]++;
      revItem[k] = i;
      revValue[k] = values[e];
    }
  }

  // Capacity beyond the number of items that want a bidder can never be used: no slots for it.
  const slots = new Int32Array(m);
  const slotStart = new Int32Array(m + 1);
  for (let j = 0; j < m; j++) {
    slots[j] = Math.min(bidders[j].capacity, bidderDegree[j]);
    slotStart[j + 1] = slotStart[j] + slots[j];
  }

  const groups = interner();
  const hosts = interner();
  const itemGroup = new Int32Array(n);
  let hasGroups = false;
  for (let i = 0; i < n; i++) {
    const g = items[i].group;
    itemGroup[i] = g === undefined ? -1 : groups.id(g);
    if (g !== undefined) hasGroups = true;
  }
  const bidderHost = new Int32Array(m);
  for (let j = 0; j < m; j++) {
    const h = bidders[j].host;
    bidderHost[j] = hosts.id(h === undefined ? `\u0000bidder:${bidders[j].id}` : `host:${h}`);
  }

  return {
    n,
    m,
    itemStart,
    edgeBidder: Int32Array.from(edges),
    edgeValue: Float64Array.from(values),
    bidderStart,
    revItem,
    revValue,
    slots,
    slotStart,
    S: slotStart[m],
    itemGroup,
    bidderHost,
    hostCount: hosts.size,
    hasGroups,
    maxValue,
    integral,
    hadCandidates,
  };
}

/** Solves the assignment problem (maximisation); see the module comment for the guarantee. */
export function auction(problem: AssignmentProblem, options: AuctionOptions = {}): AuctionResult {
  const c = compile(problem);
  const { n, m, S, itemStart, edgeBidder, edgeValue, slotStart, slots, itemGroup, bidderHost, hostCount } = c;

  const epsilonFinal = options.epsilonFinal ?? (c.integral ? 1 / (n + 1) : (c.maxValue * 1e-6) / (n + 1));
  if (!(epsilonFinal > 0) || !Number.isFinite(epsilonFinal)) throw new RangeError(`auction: epsilonFinal must be a positive number, got ${epsilonFinal}`);
  const factor = options.scalingFactor ?? DEFAULT_SCALING_FACTOR;
  if (!(factor > 1) || !Number.isFinite(factor)) throw new RangeError(`auction: scalingFactor must be a number > 1, got ${factor}`);
  const maxBids = options.maxBids ?? 200 * (n + S) + 100_000;
  if (!(maxBids >= 0)) throw new RangeError(`auction: maxBids must be ≥ 0, got ${maxBids}`);

  const slotBidder = new Int32Array(S);
  for (let j = 0; j < m; j++) slotBidder.fill(j, slotStart[j], slotStart[j + 1]);
  const price = new Float64Array(S);
  const owner = new Int32Array(S).fill(-1);
  // Per bidder, its slots as a binary min-heap on price inside heap[slotStart[j] .. slotStart[j+1]).
  const heap = new Int32Array(S);
  const heapPos = new Int32Array(S);
  for (let s = 0; s < S; s++) {
    heap[s] = s;
    heapPos[s] = s - slotStart[slotBidder[s]];
  }
  const itemSlot = new Int32Array(n).fill(-1);
  const itemEdge = new Int32Array(n).fill(-1);

  // Conflict groups: how many items of group g sit on host h (key g·hostCount + h).
  const onHost = new Map<number, number>();
  const occupy = (i: number, j: number, delta: 1 | -1) => {
    const g = itemGroup[i];
    if (g < 0) return;
    const key = g * hostCount + bidderHost[j];
    const count = (onHost.get(key) ?? 0) + delta;
    if (count === 0) onHost.delete(key);
    else onHost.set(key, count);
  };
  /** Would item i on bidder j share a host with another item of its group? */
  const blocked = (i: number, j: number): boolean => {
    const g = itemGroup[i];
    if (g < 0) return false;
    const count = onHost.get(g * hostCount + bidderHost[j]) ?? 0;
    const self = itemSlot[i] >= 0 && bidderHost[slotBidder[itemSlot[i]]] === bidderHost[j] ? 1 : 0;
    return count - self > 0;
  };

  const swap = (base: number, a: number, b: number) => {
    const sa = heap[base + a];
    const sb = heap[base + b];
    heap[base + a] = sb;
    heap[base + b] = sa;
    heapPos[sb] = a;
    heapPos[sa] = b;
  };
  const siftDown = (j: number, k: number) => {
    const base = slotStart[j];
    const size = slots[j];
    for (;;) {
      const l = 2 * k + 1;
      if (l >= size) return;
      const r = l + 1;
      const child = r < size && price[heap[base + r]] < price[heap[base + l]] ? r : l;
      if (price[heap[base + child]] >= price[heap[base + k]]) return;
      swap(base, k, child);
      k = child;
    }
  };
  /** Price of bidder j's second-cheapest slot (Infinity with one slot). */
  const secondPrice = (j: number): number => {
    const base = slotStart[j];
    const size = slots[j];
    if (size < 2) return Infinity;
    const l = price[heap[base + 1]];
    return size > 2 ? Math.min(l, price[heap[base + 2]]) : l;
  };

  let bids = 0;
  let reverseSteps = 0;
  let phases = 0;
  let stopped = false;
  const waiting = new Int32Array(n);
  let waitingCount = 0;

  /**
   * One forward-auction phase at ε: every waiting item bids for the slot
   * that gives it the most, raising its price by its margin over the second
   * best (staying unassigned counts as an option worth 0) plus ε. An item
   * whose best option gains nothing drops out: prices only rise during a
   * phase, so that stays true.
   */
  const forwardPhase = (eps: number) => {
    while (waitingCount > 0) {
      if (bids + reverseSteps >= maxBids) {
        stopped = true;
        return;
      }
      const i = waiting[--waitingCount];
      let best = -1;
      let bestEdge = -1;
      let bestGain = -Infinity;
      let secondGain = 0;
      for (let e = itemStart[i]; e < itemStart[i + 1]; e++) {
        const j = edgeBidder[e];
        if (c.hasGroups && blocked(i, j)) continue;
        const gain = edgeValue[e] - price[heap[slotStart[j]]];
        if (gain > bestGain) {
          if (bestGain > secondGain) secondGain = bestGain;
          bestGain = gain;
          best = j;
          bestEdge = e;
        } else if (gain > secondGain) secondGain = gain;
      }
      if (best < 0 || bestGain <= 0) continue; // stays unassigned (π = 0 is its best)
      // The best bidder's next slot is a distinct option too.
      const nextGain = edgeValue[bestEdge] - secondPrice(best);
      if (nextGain > secondGain) secondGain = nextGain;
      const s = heap[slotStart[best]];
      const previous = owner[s];
      if (previous >= 0) {
        occupy(previous, best, -1);
        itemSlot[previous] = -1;
        itemEdge[previous] = -1;
        waiting[waitingCount++] = previous;
      }
      owner[s] = i;
      itemSlot[i] = s;
      itemEdge[i] = bestEdge;
      occupy(i, best, 1);
      price[s] += bestGain - secondGain + eps;
      siftDown(best, heapPos[s]);
      bids++;
    }
  };

  /** Restores bidder j's heap after several of its prices changed. */
  const reheap = (j: number) => {
    for (let k = (slots[j] >> 1) - 1; k >= 0; k--) siftDown(j, k);
  };

  /**
   * Reverse steps for bidders left with a free slot at a positive price (ε-
   * scaling carries prices over, so a slot bid up in one phase may end the
   * next one empty). Done slot by slot, the steps would shuffle the bidder's
   * own items between its identical slots, ε at a time; so one step treats
   * the bidder whole. With β(i) = a(i,j) − π(i) for the items not on j:
   * - every slot of j is lowered to L = max(0, β₁ − ε) (β₁ the best β): its
   *   owners only gain, and no other item gains more than ε from any slot;
   * - if β₁ ≤ ε, L = 0 and j is done: free slots at price 0, as required;
   * - else the best item moves into a free slot at max(0, β₂ − ε, L − ε)
   *   (β₂ the second best), gaining at least ε; the slot it left is queued.
   * Each move raises one item's profit by ≥ ε, profits are ≤ C: it ends.
   */
  const reversePass = (eps: number) => {
    const { bidderStart, revItem, revValue } = c;
    const profit = (i: number) => (itemSlot[i] >= 0 ? edgeValue[itemEdge[i]] - price[itemSlot[i]] : 0);
    const freePriced = (j: number): number => {
      for (let s = slotStart[j]; s < slotStart[j + 1]; s++) if (owner[s] < 0 && price[s] > 0) return s;
      return -1;
    };
    const pending: number[] = [];
    for (let j = 0; j < m; j++) if (freePriced(j) >= 0) pending.push(j);
    while (pending.length > 0) {
      if (bids + reverseSteps >= maxBids) {
        stopped = true;
        return;
      }
      const j = pending.pop()!;
      const s = freePriced(j);
      if (s < 0) continue;
      let bestItem = -1;
      let best = -Infinity;
      let second = -Infinity;
      for (let k = bidderStart[j]; k < bidderStart[j + 1]; k++) {
        const i = revItem[k];
        if (itemSlot[i] >= 0 && slotBidder[itemSlot[i]] === j) continue;
        if (c.hasGroups && blocked(i, j)) continue;
        const beta = revValue[k] - profit(i);
        if (beta > best) {
          second = best;
          best = beta;
          bestItem = i;
        } else if (beta > second) second = beta;
      }
      reverseSteps++;
      const level = Math.max(0, best - eps);
      for (let t = slotStart[j]; t < slotStart[j + 1]; t++) if (price[t] > level) price[t] = level;
      if (bestItem >= 0 && best > eps) {
        const old = itemSlot[bestItem];
        if (old >= 0) {
          const k = slotBidder[old];
          occupy(bestItem, k, -1);
          owner[old] = -1;
          if (price[old] > 0) pending.push(k);
        }
        let edge = itemStart[bestItem];
        while (edgeBidder[edge] !== j) edge++;
        owner[s] = bestItem;
        itemSlot[bestItem] = s;
        itemEdge[bestItem] = edge;
        occupy(bestItem, j, 1);
        price[s] = Math.max(0, second - eps, level - eps);
        pending.push(j); // it may have another free slot
      }
      reheap(j);
    }
  };

  // ε-scaling: coarse phases find roughly right prices fast; each later phase starts from them.
  let eps = Math.max(epsilonFinal, c.maxValue / 4);
  for (;;) {
    phases++;
    owner.fill(-1);
    itemSlot.fill(-1);
    itemEdge.fill(-1);
    onHost.clear();
    waitingCount = 0;
    for (let i = n - 1; i >= 0; i--) if (itemStart[i + 1] > itemStart[i]) waiting[waitingCount++] = i;
    forwardPhase(eps);
    if (!stopped) reversePass(eps);
    if (stopped || eps <= epsilonFinal) break;
    eps = Math.max(epsilonFinal, eps / factor);
  }

  // Result, and a reason for every item left out.
  const assignment = new Map<string, string>();
  let totalValue = 0;
  const stillWaiting = new Uint8Array(n);
  if (stopped) for (let k = 0; k < waitingCount; k++) stillWaiting[waiting[k]] = 1;
  const unassigned: AuctionResult["unassigned"] = [];
  for (let i = 0; i < n; i++) {
    const id = problem.items[i].id;
    if (itemSlot[i] >= 0) {
      assignment.set(id, problem.bidders[slotBidder[itemSlot[i]]].id);
      totalValue += edgeValue[itemEdge[i]];
      continue;
    }
    let reason: UnassignedReason;
    if (stillWaiting[i]) reason = "bid_limit";
    else if (!c.hadCandidates[i]) reason = "no_candidates";
    else if (itemStart[i + 1] === itemStart[i]) reason = "no_gain";
    else {
      let allBlocked = true;
      for (let e = itemStart[i]; e < itemStart[i + 1] && allBlocked; e++) if (!blocked(i, edgeBidder[e])) allBlocked = false;
      reason = allBlocked ? "conflict" : "outbid";
    }
    unassigned.push({ item: id, reason });
  }
  const converged = !stopped;
  return {
    assignment,
    totalValue,
    epsilon: eps,
    gapBound: converged && !c.hasGroups ? n * eps : null,
    unassigned,
    phases,
    bids,
    reverseSteps,
    converged,
  };
}

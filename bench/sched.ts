/**
 * `npm run bench:sched` — the auction scheduler (src/core/auction.ts,
 * issue 5 "Benchmarks"), in a SIMULATION: no sockets, no peers, a virtual
 * clock and seeded randomness, so every run with the same seed prints the
 * same figures except the run time.
 *
 * 1. Multi-source download: a 1 GiB file in 4 MiB chunks from 10 sources
 *    whose rates spread from 1 to 100 MB/s; each source serves its requests
 *    one after another at its rate (±15 % per chunk). Completion time over
 *    the ideal (file size / sum of the rates) for
 *    (a) the auction: the downloader knows no rate at first (it assumes
 *        10 MB/s) and measures each source from the bytes it sees arrive;
 *        every time a chunk completes it re-runs the auction of the chunks
 *        not yet started over "slots" (source, queue position) worth
 *        horizon − expected completion time, and starts what an idle
 *        source won. Endgame: with nothing left to start, an idle source
 *        also requests the in-flight chunk expected to finish last, if it
 *        would finish it sooner; the first copy wins, the other is cancelled.
 *    (b) random and (c) round-robin assignment of every chunk up front.
 *    Target for (a): within 10 % of the ideal.
 * 2. Placement: 10,000 chunks × 3 replicas on 100 peers (80 hosts; sizes
 *    vary 10×), placed 100 chunks (one put) at a time: the auction (benefit:
 *    free fraction and a per-pair connectivity score; capacity per put: a
 *    fair share of the room left; replicas of a chunk on distinct hosts)
 *    against random placement (a random peer with room on a host without
 *    the chunk). Max over mean fill ratio (1 = perfectly even).
 * 3. Auction run time, 10,000 items × 1,000 bidders, 20–50 candidates per
 *    item, feasible capacities, integer benefits: median of 3 runs, ms.
 *
 *   npm run bench:sched [-- --json] [--seed N]
 *
 * Exit status 0 with results (targets are printed and do not change it),
 * 2 for a bad flag.
 */
import { parseArgs } from "node:util";
import { auction, type AuctionBidder, type AuctionItem, type Benefit } from "../src/core/auction.js";
import { mulberry32 as prng } from "../src/core/random.js";

const MiB = 1024 * 1024;
const MB = 1e6;
const TARGET_RATIO = 1.1;
/** Chunks the download auction plans at a time (the rest wait for later re-runs). */
const PLAN_WINDOW = 64;
const USAGE = "usage: npm run bench:sched -- [--json] [--seed N]";

// ---------------------------------------------------------------- 1. multi-source download

interface DownloadSetup {
  fileBytes: number;
  chunkBytes: number;
  /** True mean rate of each source, bytes/s. */
  rates: number[];
  /** noise[chunk][source]: that chunk's rate factor at that source. */
  noise: number[][];
}

function downloadSetup(rand: () => number): DownloadSetup {
  const fileBytes = 1024 * MiB;
  const chunkBytes = 4 * MiB;
  const chunks = fileBytes / chunkBytes;
  // The extremes 1 and 100 MB/s are always there; the other eight anywhere between.
  const rates = [1, 100, ...Array.from({ length: 8 }, () => 1 + rand() * 99)].map((r) => r * MB);
  const noise = Array.from({ length: chunks }, () => rates.map(() => 0.85 + rand() * 0.3));
  return { fileBytes, chunkBytes, rates, noise };
}

const transferSeconds = (s: DownloadSetup, chunk: number, source: number) => s.chunkBytes / (s.rates[source] * s.noise[chunk][source]);

/** Every chunk's source fixed up front; each source serves its queue in order. */
function staticDownload(s: DownloadSetup, sourceOf: (chunk: number) => number): number {
  const busy = s.rates.map(() => 0);
  for (let c = 0; c < s.noise.length; c++) busy[sourceOf(c)] += transferSeconds(s, c, sourceOf(c));
  return Math.max(...busy);
}

interface Transfer {
  chunk: number;
  startS: number;
  endS: number;
}

interface AuctionDownload {
  seconds: number;
  chunksPerSource: number[];
  duplicates: number;
  cancelled: number;
  auctions: number;
  auctionMsTotal: number;
}

function auctionDownload(s: DownloadSetup): AuctionDownload {
  const chunks = s.noise.length;
  const n = s.rates.length;
  const PRIOR_RATE = 10 * MB;
  const estimate = s.rates.map(() => PRIOR_RATE);
  const running: Array<Transfer | null> = s.rates.map(() => null);
  const pending = new Set(Array.from({ length: chunks }, (_, c) => c));
  const done = new Set<number>();
  const served = s.rates.map(() => 0);
  let duplicates = 0;
  let cancelled = 0;
  let auctions = 0;
  let auctionMsTotal = 0;
  let now = 0;

  const start = (source: number, chunk: number) => {
    running[source] = { chunk, startS: now, endS: now + transferSeconds(s, chunk, source) };
  };
  /** When the downloader expects `source` to be free, from what it has measured. */
  const expectedFree = (source: number) => {
    const t = running[source];
    if (!t) return now;
    const seen = ((now - t.startS) / (t.endS - t.startS)) * s.chunkBytes;
    return now + (s.chunkBytes - seen) / estimate[source];
  };

  /** Re-runs the auction of the chunks not started yet and starts what idle sources won. */
  const schedule = () => {
    if (pending.size === 0) return;
    // A slot (source, queue position) finishing after the P-th earliest slot (P = chunks left) is in no
    // plan for those P chunks: it is not offered. So a slow source gets a chunk only if it would
    // finish it before the fast ones would get through the rest of the file.
    const free = estimate.map((_, j) => expectedFree(j));
    const ends: number[] = [];
    for (let j = 0; j < n; j++) for (let k = 0; k < pending.size; k++) ends.push(free[j] + ((k + 1) * s.chunkBytes) / estimate[j]);
    ends.sort((a, b) => a - b);
    const cutoff = ends[pending.size - 1];
    // Plan a window of the next chunks: enough to keep every source busy, cheap to re-plan at every completion.
    const order = [...pending].sort((a, b) => a - b).slice(0, PLAN_WINDOW);
    const items: AuctionItem[] = order.map((c) => ({ id: String(c) }));
    const bidders: AuctionBidder[] = [];
    const slotEnd: number[] = [];
    for (let j = 0; j < n; j++) {
      for (let k = 0; k < order.length; k++) {
        const end = free[j] + ((k + 1) * s.chunkBytes) / estimate[j];
        if (end > cutoff) break;
        bidders.push({ id: `${j}:${k}`, capacity: 1 });
        slotEnd.push(end);
      }
    }
    if (bidders.length === 0) return;
    const horizon = 2 * Math.max(...slotEnd);
    // Benefit: time saved against the horizon; earlier chunks weigh slightly more (in-order streaming).
    const benefits = new Map<string, Benefit[]>();
    order.forEach((c, r) => {
      const weight = 1 + (0.01 * (order.length - r)) / order.length;
      benefits.set(
        String(c),
        bidders.map((b, k) => ({ bidder: b.id, value: weight * (horizon - slotEnd[k]) })),
      );
    });
    const t0 = performance.now();
    const result = auction({ items, bidders, benefits });
    auctionMsTotal += performance.now() - t0;
    auctions++;
    for (const [item, bidder] of result.assignment) {
      const [j, k] = bidder.split(":").map(Number);
      if (k !== 0 || running[j]) continue; // only idle sources start now; the rest is re-planned later
      pending.delete(Number(item));
      start(j, Number(item));
    }
  };

  /**
   * With nothing left to start, an idle source also requests the in-flight chunk expected to finish last
   * (by its fastest copy), if it would finish it sooner; a faster source that goes idle later may add
   * another copy. The first copy to finish wins; the others are cancelled.
   */
  const endgame = () => {
    if (pending.size > 0) return;
    for (let j = 0; j < n; j++) {
      if (running[j]) continue;
      const finishOf = new Map<number, number>();
      for (let h = 0; h < n; h++) {
        const t = running[h];
        if (t) finishOf.set(t.chunk, Math.min(finishOf.get(t.chunk) ?? Infinity, expectedFree(h)));
      }
      let latest: { chunk: number; finish: number } | null = null;
      for (const [chunk, finish] of finishOf) if (!latest || finish > latest.finish) latest = { chunk, finish };
      if (latest && now + s.chunkBytes / estimate[j] < latest.finish) {
        start(j, latest.chunk);
        duplicates++;
      }
    }
  };

  schedule();
  while (done.size < chunks) {
    now = Math.min(...running.filter((t): t is Transfer => t !== null).map((t) => t.endS));
    for (let j = 0; j < n; j++) {
      const t = running[j];
      if (!t) continue;
      // Progress seen so far measures the source (this chunk's rate).
      if (now > t.startS) estimate[j] = s.chunkBytes / (t.endS - t.startS);
      if (t.endS > now) continue;
      running[j] = null;
      if (!done.has(t.chunk)) {
        done.add(t.chunk);
        served[j]++;
      }
      // The loser of an endgame race is cancelled.
      for (let k = 0; k < n; k++) {
        if (running[k]?.chunk === t.chunk) {
          running[k] = null;
          cancelled++;
        }
      }
    }
    schedule();
    endgame();
  }
  return { seconds: now, chunksPerSource: served, duplicates, cancelled, auctions, auctionMsTotal };
}

// ---------------------------------------------------------------- 2. placement

interface PlacementPeer {
  id: string;
  host: string;
  capacity: number;
  used: number;
}

function placementPeers(rand: () => number): PlacementPeer[] {
  // 100 peers on 80 hosts (20 hosts run two peers); capacities 10× apart, total about twice the need.
  return Array.from({ length: 100 }, (_, p) => ({
    id: `p${p}`,
    host: `h${p < 40 ? p >> 1 : p - 20}`,
    capacity: Math.round(120 * 10 ** rand()),
    used: 0,
  }));
}

function fillStats(peers: PlacementPeer[]): { maxOverMean: number; maxFill: number; meanFill: number } {
  const fills = peers.map((p) => p.used / p.capacity);
  const meanFill = fills.reduce((a, b) => a + b, 0) / fills.length;
  const maxFill = Math.max(...fills);
  return { maxOverMean: maxFill / meanFill, maxFill, meanFill };
}

const CHUNKS = 10_000;
const REPLICAS = 3;
const CHUNKS_PER_PUT = 100;

function auctionPlacement(peers: PlacementPeer[], rand: () => number): { unplaced: number; hostConflicts: number } {
  let unplaced = 0;
  let hostConflicts = 0;
  for (let first = 0; first < CHUNKS; first += CHUNKS_PER_PUT) {
    const room = peers.map((p) => p.capacity - p.used);
    const totalRoom = Math.max(
      1,
      room.reduce((a, b) => a + b, 0),
    );
    const need = CHUNKS_PER_PUT * REPLICAS;
    const bidders: AuctionBidder[] = peers.map((p, j) => ({ id: p.id, host: p.host, capacity: Math.min(room[j], Math.ceil((1.25 * need * room[j]) / totalRoom)) }));
    const items: AuctionItem[] = [];
    const benefits = new Map<string, Benefit[]>();
    for (let c = first; c < first + CHUNKS_PER_PUT; c++) {
      for (let r = 0; r < REPLICAS; r++) {
        const id = `c${c}r${r}`;
        items.push({ id, group: `c${c}` });
        // Free fraction dominates; connectivity to the publisher (0–100) breaks near-ties.
        benefits.set(
          id,
          peers.map((p, j) => ({ bidder: p.id, value: Math.round(1000 * (room[j] / p.capacity)) + Math.floor(rand() * 100) + 1 })),
        );
      }
    }
    const result = auction({ items, bidders, benefits });
    unplaced += result.unassigned.length;
    const byId = new Map(peers.map((p) => [p.id, p]));
    const hostsOf = new Map<string, Set<string>>();
    for (const [item, peerId] of result.assignment) {
      const peer = byId.get(peerId)!;
      peer.used++;
      const chunk = item.slice(0, item.indexOf("r"));
      const hosts = hostsOf.get(chunk) ?? new Set<string>();
      if (hosts.has(peer.host)) hostConflicts++;
      hostsOf.set(chunk, hosts.add(peer.host));
    }
  }
  return { unplaced, hostConflicts };
}

function randomPlacement(peers: PlacementPeer[], rand: () => number): { unplaced: number } {
  let unplaced = 0;
  for (let c = 0; c < CHUNKS; c++) {
    const hosts = new Set<string>();
    for (let r = 0; r < REPLICAS; r++) {
      const open = peers.filter((p) => p.used < p.capacity && !hosts.has(p.host));
      if (open.length === 0) {
        unplaced++;
        continue;
      }
      const p = open[Math.floor(rand() * open.length)];
      p.used++;
      hosts.add(p.host);
    }
  }
  return { unplaced };
}

// ---------------------------------------------------------------- 3. auction run time

function bigInstance(rand: () => number): Parameters<typeof auction>[0] {
  const n = 10_000;
  const m = 1_000;
  const items = Array.from({ length: n }, (_, i) => ({ id: `i${i}` }));
  // Capacities 8–20 (about 14,000 slots for 10,000 items): feasible, with competition.
  const bidders = Array.from({ length: m }, (_, j) => ({ id: `b${j}`, capacity: 8 + Math.floor(rand() * 13) }));
  const benefits = new Map<string, Benefit[]>();
  for (const item of items) {
    const k = 20 + Math.floor(rand() * 31);
    const chosen = new Set<number>();
    while (chosen.size < k) chosen.add(Math.floor(rand() * m));
    benefits.set(
      item.id,
      [...chosen].map((j) => ({ bidder: `b${j}`, value: 1 + Math.floor(rand() * 1000) })),
    );
  }
  return { items, bidders, benefits };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ---------------------------------------------------------------- main

function parseFlags(argv: string[]): { json: boolean; seed: number; help: boolean } {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: { json: { type: "boolean", default: false }, seed: { type: "string", default: "1" }, help: { type: "boolean", short: "h", default: false } },
  });
  const raw = values.seed!;
  if (!/^\d{1,9}$/.test(raw)) throw new Error(`--seed must be an integer from 0 to 999999999, got ${JSON.stringify(raw)}`);
  return { json: values.json === true, seed: Number(raw), help: values.help === true };
}

function main(): number {
  let flags: ReturnType<typeof parseFlags>;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench:sched: ${(error as Error).message.split("\n")[0].replace(/\. To specify .*$/, "")} (${USAGE})\n`);
    return 2;
  }
  if (flags.help) {
    process.stdout.write(USAGE + "\n");
    return 0;
  }

  // 1. Multi-source download.
  const setup = downloadSetup(prng(flags.seed));
  const idealSeconds = setup.fileBytes / setup.rates.reduce((a, b) => a + b, 0);
  const auctioned = auctionDownload(setup);
  const pick = prng(flags.seed + 1);
  const randomSeconds = staticDownload(setup, () => Math.floor(pick() * setup.rates.length));
  const roundRobinSeconds = staticDownload(setup, (c) => c % setup.rates.length);
  const multiSource = {
    fileBytes: setup.fileBytes,
    chunkBytes: setup.chunkBytes,
    sourcesMBps: setup.rates.map((r) => Math.round((r / MB) * 10) / 10),
    idealSeconds,
    seconds: auctioned.seconds,
    ratioToIdeal: auctioned.seconds / idealSeconds,
    randomRatioToIdeal: randomSeconds / idealSeconds,
    roundRobinRatioToIdeal: roundRobinSeconds / idealSeconds,
    target: TARGET_RATIO,
    chunksPerSource: auctioned.chunksPerSource,
    endgameDuplicates: auctioned.duplicates,
    endgameCancelled: auctioned.cancelled,
    auctions: auctioned.auctions,
    auctionMsMean: auctioned.auctionMsTotal / auctioned.auctions,
  };

  // 2. Placement.
  const peersA = placementPeers(prng(flags.seed + 2));
  const peersR = peersA.map((p) => ({ ...p }));
  const placedA = auctionPlacement(peersA, prng(flags.seed + 3));
  const placedR = randomPlacement(peersR, prng(flags.seed + 4));
  const fillA = fillStats(peersA);
  const fillR = fillStats(peersR);
  const placement = {
    chunks: CHUNKS,
    replicas: REPLICAS,
    peers: peersA.length,
    hosts: new Set(peersA.map((p) => p.host)).size,
    capacityRange: [Math.min(...peersA.map((p) => p.capacity)), Math.max(...peersA.map((p) => p.capacity))],
    maxOverMean: fillA.maxOverMean,
    randomMaxOverMean: fillR.maxOverMean,
    meanFill: fillA.meanFill,
    unplaced: placedA.unplaced,
    randomUnplaced: placedR.unplaced,
    hostConflicts: placedA.hostConflicts,
  };

  // 3. Auction run time.
  const instance = bigInstance(prng(flags.seed + 5));
  const runs = [0, 1, 2].map(() => {
    const t0 = performance.now();
    const result = auction(instance);
    return { ms: performance.now() - t0, result };
  });
  const auctionMs = median(runs.map((r) => r.ms));
  const last = runs[runs.length - 1].result;
  const auctionRun = {
    items: 10_000,
    bidders: 1_000,
    runsMs: runs.map((r) => r.ms),
    bids: last.bids,
    reverseSteps: last.reverseSteps,
    phases: last.phases,
    unassigned: last.unassigned.length,
    converged: last.converged,
    epsilon: last.epsilon,
  };

  if (flags.json) {
    process.stdout.write(JSON.stringify({ benchmark: "sched", simulation: true, seed: flags.seed, node: process.version, multiSource, placement, auctionMs, auction: auctionRun }) + "\n");
    return 0;
  }
  const f = (x: number, d = 2) => x.toFixed(d);
  const rows: string[][] = [
    [
      "download: auction + endgame",
      `${f(auctioned.seconds)} s`,
      `${f(idealSeconds)} s ideal`,
      f(multiSource.ratioToIdeal, 3),
      `≤ ${TARGET_RATIO}`,
      multiSource.ratioToIdeal <= TARGET_RATIO ? "met" : "NOT met",
    ],
    ["download: random", `${f(randomSeconds)} s`, `${f(idealSeconds)} s ideal`, f(multiSource.randomRatioToIdeal, 3), "", ""],
    ["download: round-robin", `${f(roundRobinSeconds)} s`, `${f(idealSeconds)} s ideal`, f(multiSource.roundRobinRatioToIdeal, 3), "", ""],
    ["placement max/mean fill: auction", f(fillA.maxOverMean, 3), `random ${f(fillR.maxOverMean, 3)}`, f(fillA.maxOverMean / fillR.maxOverMean, 3), "", ""],
    ["auction 10,000 items × 1,000 bidders", `${f(auctionMs, 0)} ms`, "", "", "", ""],
  ];
  const header = ["measure (SIMULATION)", "value", "baseline", "ratio", "target", ""];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const row = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  console.log(`peercloud scheduling benchmark — SIMULATION (virtual clock, seed ${flags.seed}), node ${process.version}`);
  console.log(
    `sources ${multiSource.sourcesMBps.join(", ")} MB/s; 1 GiB in 4 MiB chunks; chunks served per source ${auctioned.chunksPerSource.join(", ")}; endgame duplicates ${auctioned.duplicates} (${auctioned.cancelled} cancelled)`,
  );
  console.log(
    `placement: ${CHUNKS} chunks × ${REPLICAS} replicas on ${placement.peers} peers / ${placement.hosts} hosts, capacities ${placement.capacityRange.join("–")} chunks; unplaced ${placedA.unplaced} (random ${placedR.unplaced}), host conflicts ${placedA.hostConflicts}`,
  );
  console.log(
    `auction run: median of ${runs.map((r) => f(r.ms, 0)).join(", ")} ms; ${last.bids} bids, ${last.reverseSteps} reverse steps, ${last.phases} phases, ${last.unassigned.length} unassigned`,
  );
  console.log(row(header));
  for (const r of rows) console.log(row(r));
  return 0;
}

const code = main();
process.stdout.write("", () => process.exit(code));

/**
 * End to end: a storage peer that joins empty gets its share (issue 6,
 * "Trim and rebalance"; durable-objects/region-directory/rebalancer.ts).
 * The real edge and real peer daemons, every one with the same
 * `--storage-limit`: they all share this machine's disk, so without a limit
 * each would report the disk's free space and every fill would be ~0 %.
 * Three peers take a few files at three replicas (each holds everything,
 * ~44 % full); then a fourth peer starts empty, and the test waits —
 * polling with a deadline, never sleeping — until the region is balanced:
 * every peer, the newcomer too, within `rebalanceThresholdPercent` points
 * of the mean fill (what the rebalancer promises: it moves while a peer is
 * further off),
 * no move open, and every chunk back at exactly its target number of
 * holders (the moves' source copies trimmed). In the same loop it records
 * the fewest live holders any chunk had, as the directory lists them and
 * as the stores hold them: a move copies before it trims, so that must
 * never drop below the target. Then every file downloads bit-exact in a
 * fresh home.
 *
 * Status reports carry the fills the rebalancer plans on, so their interval
 * is cut from 5 minutes to 2 s (STATUS_INTERVAL_MS; peers take it from the
 * directory's welcome). The trim grace stays far longer than the test: a
 * surplus copy that goes within the bound was trimmed as a move's source,
 * which skips the grace. Timings and figures are printed, not asserted
 * beyond the safety bound (DESIGN "Testing").
 */
import { statSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RebalanceSummary, RegionSummary } from "../../durable-objects/region-directory-contract.js";
import { DEFAULT_PARAMS } from "../../src/core/params.js";
import { startTestNetwork, waitUntil, type TestNetwork, type TestPeer, pinnedRegionSummary } from "../helpers/peer-process.js";
import { expectAllDownload, putReplicated } from "../helpers/replicated-files.js";

const HEARTBEAT_MS = 2000;
const STATUS_MS = 2000;
const STORAGE_LIMIT = "64MiB";
const LIMIT_BYTES = 64 * 1024 * 1024;
const REPLICAS = 3;
/** The band the rebalancer leaves alone, in fill points (the default, passed explicitly so the assertion matches it). */
const THRESHOLD_PERCENT = DEFAULT_PARAMS.rebalanceThresholdPercent;
/** Longer than the whole test: only a move's source copy may be trimmed within it. */
const TRIM_GRACE_MS = 30 * 60_000;
/** ~28 MiB in four files, ~1 MiB chunks: each of the three peers ~44 % full, the mean with the newcomer ~33 %. */
const FILE_SIZES = [9 * 1024 * 1024 + 13, 8 * 1024 * 1024 + 7, 7 * 1024 * 1024 + 5, 4 * 1024 * 1024 + 3];
/** Safety net for the whole rebalance on a loaded 2-core machine: ~15 moves of ~1 MiB, two at a time, trims every 10 s. */
const BALANCE_BOUND_MS = 240_000;

let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork({
    peers: 3,
    startOptions: { storageLimit: STORAGE_LIMIT },
    edge: {
      vars: {
        HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
        STATUS_INTERVAL_MS: String(STATUS_MS),
        TRIM_GRACE_MS: String(TRIM_GRACE_MS),
        REBALANCE_THRESHOLD_PERCENT: String(THRESHOLD_PERCENT),
        REPAIR_JOB_TIMEOUT_MS: "30000",
        REPAIR_RETRY_BACKOFF_MS: "5000",
      },
    },
  });
}, 240_000);

afterAll(async () => {
  await net?.stop();
});

function regionSummary(): Promise<RegionSummary> {
  return pinnedRegionSummary(net.edge);
}

/** What a peer's store holds: CID → sealed size, read from its files (the store's usedBytes is the sum of these). */
function storeOf(peer: TestPeer): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const [cid, path] of peer.chunkFiles()) {
    try {
      sizes.set(cid, statSync(path).size);
    } catch {
      // trimmed between the listing and the stat: not held
    }
  }
  return sizes;
}

const bytesOf = (store: Map<string, number>) => [...store.values()].reduce((a, b) => a + b, 0);
/** Fill in percent as the daemon reports it: used over used + free, which is the limit while nothing is being written. */
const fillOf = (store: Map<string, number>) => (100 * bytesOf(store)) / LIMIT_BYTES;
const pct = (fill: number) => `${fill.toFixed(1)} %`;

describe("rebalance onto a peer that joins empty", () => {
  it("the newcomer gets a fair share, never fewer than 3 replicas meanwhile, the sources' copies trimmed, files intact", async () => {
    const old = [...net.peers];
    const [publisher] = old;
    const { files, cids } = await putReplicated(net, publisher, net.dir("rebalance"), FILE_SIZES, REPLICAS, "rebalance");
    // Three replicas on three peers: each holds everything.
    const before = old.map(storeOf);
    for (const store of before) expect([...store.keys()].sort()).toEqual([...cids].sort());
    const summaryBefore = await regionSummary();
    expect(summaryBefore.rebalance).toMatchObject({ completedMoves: 0, runningMoves: 0, queuedMoves: 0 });

    // The mean fill once every chunk is back at its target (the one the rebalancer plans toward: it counts a
    // confirmed move's source copy as gone). The stores' own mean is higher while copies wait for their trim.
    const settledMean = (100 * REPLICAS * bytesOf(before[0])) / ((old.length + 1) * LIMIT_BYTES);
    const joinedAt = Date.now();
    const newcomer = await net.addPeer({ startOptions: { storageLimit: STORAGE_LIMIT } });
    const everyone = [...old, newcomer];
    const startedMs = Date.now() - joinedAt;

    let minListed = Infinity;
    let minStored = Infinity;
    /** The most holders any chunk had (a copy made, its source not trimmed yet), and how often the loop looked. */
    let maxStored = 0;
    let polls = 0;
    let shareMs: number | null = null;
    let stores: Map<string, number>[] = [];
    let summary = summaryBefore;
    let mean = 0;
    await waitUntil("the region balanced: no peer out of the band, no move open, every chunk at its target", BALANCE_BOUND_MS, async () => {
      // The old peers' stores first, the newcomer's last: a move's copy is on the newcomer before its source
      // deletes, so a copy gone from a source by the time it is read is already counted on the newcomer.
      stores = everyone.map(storeOf);
      const storedCounts = cids.map((cid) => stores.filter((s) => s.has(cid)).length);
      minStored = Math.min(minStored, ...storedCounts);
      maxStored = Math.max(maxStored, ...storedCounts);
      polls++;
      const listedCounts: number[] = [];
      for (const cid of cids) listedCounts.push((await net.providersOf(cid)).filter((p) => p.state !== "dead").length);
      minListed = Math.min(minListed, ...listedCounts);
      summary = await regionSummary();

      const fills = stores.map(fillOf);
      mean = fills.reduce((a, b) => a + b, 0) / fills.length;
      const newcomerFill = fills[fills.length - 1];
      if (shareMs === null && newcomerFill >= settledMean - THRESHOLD_PERCENT) shareMs = Date.now() - joinedAt;
      const inBand = fills.every((f) => Math.abs(f - mean) <= THRESHOLD_PERCENT);
      const noMoveOpen = summary.rebalance.runningMoves === 0 && summary.rebalance.queuedMoves === 0;
      const atTarget = storedCounts.every((n) => n === REPLICAS) && listedCounts.every((n) => n === REPLICAS);
      return inBand && noMoveOpen && atTarget;
    });
    const balancedMs = Date.now() - joinedAt;

    const after = stores;
    const fillsBefore = [...before.map(fillOf), 0];
    const fillsAfter = after.map(fillOf);
    const held = after[after.length - 1];
    const r: RebalanceSummary = summary.rebalance;
    console.log(
      `rebalance: newcomer joined and connected in ${startedMs} ms; its copies within ${THRESHOLD_PERCENT} points of the mean after ${shareMs} ms, region balanced and trimmed after ${balancedMs} ms (bound ${BALANCE_BOUND_MS} ms); ` +
        `${r.completedMoves} move(s), ${r.movedBytes} bytes moved, ${r.failedAttempts} failed attempt(s); ` +
        `fills before ${fillsBefore.map(pct).join(" / ")}, after ${fillsAfter.map(pct).join(" / ")} (mean ${pct(mean)}); ` +
        `chunks before ${[...before.map((s) => s.size), 0].join(" / ")}, after ${after.map((s) => s.size).join(" / ")} of ${cids.length}; ` +
        `holders of any chunk meanwhile (${polls} polls): fewest ${minListed} listed live, ${minStored} in stores; most ${maxStored} in stores`,
    );

    // The newcomer holds a fair share, and every copy it holds is pinned (a move pins like a repair).
    expect(fillsAfter[fillsAfter.length - 1]).toBeGreaterThanOrEqual(mean - THRESHOLD_PERCENT);
    for (const cid of held.keys()) expect(newcomer.pins(cid), cid).toBe(true);
    // It got them through moves only (nothing else was put): one confirmed move per chunk it holds, their bytes.
    expect(r.completedMoves).toBe(held.size);
    expect(r.movedBytes).toBe(bytesOf(held));
    // Each move's source copy was trimmed (the grace is longer than the test, so by the move, not as ordinary
    // surplus): the old peers together gave up exactly what the newcomer took.
    const givenUp = old.map((_, i) => before[i].size - after[i].size);
    expect(givenUp.reduce((a, b) => a + b, 0)).toBe(held.size);
    // Copies are made before sources are trimmed: never fewer than the target, in the directory or on disk.
    expect(minListed).toBeGreaterThanOrEqual(REPLICAS);
    expect(minStored).toBeGreaterThanOrEqual(REPLICAS);
    expect(summary.underReplicatedChunks).toBe(0);

    // Every file downloads bit-exact in a home that holds nothing.
    await expectAllDownload(net, files, net.dir("rebalance-out"));
  }, 420_000);
});

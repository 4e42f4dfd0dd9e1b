/**
 * Region directory, rebalance (issue 6 item 5; rebalancer.ts,
 * rebalance-ledger.ts, src/core/rebalance.ts): a storage peer that joins
 * empty gets moves — copies of chunks held by the fullest peers, sent as
 * ordinary repair jobs — and once a copy is confirmed the trim takes the
 * fuller source's copy, not the new one, without waiting for the grace.
 * The test plays every peer: it keeps each one's store as a set of chunks,
 * reports free space and capacity from it, stores what `repair` asks,
 * deletes what `trim` asks and announces both. Time moves through the
 * object's clock and the alarm is run by hand: nothing waits.
 */
import { abortAllDurableObjects, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { DirectoryToPeer } from "../../src/core/messages.js";
import { meanFill } from "../../src/core/rebalance.js";
import type { RepairJob } from "../../durable-objects/region-directory/repair-jobs.js";
import { PARAMS, connectPeer, directoryStub, freshRegion, randomCid, registerPeer, setClock, type DirectoryStub, type PeerSocket } from "./region-directory-support.js";

const CAPACITY_BYTES = 10_000;
const CHUNK_BYTES = 1000;
const TARGET = 3;
/** Past the trimmer's shortest gap between passes (trimmer.ts TRIM_INTERVAL_MS), far below the trim grace. */
const STEP_MS = 11_000;

/** One simulated storage peer: its socket, the chunks its store holds, its capacity and the bytes its disk holds besides. */
interface SimPeer {
  socket: PeerSocket;
  chunks: Set<string>;
  capacityBytes: number;
  otherBytes: number;
}

const usedBytes = (p: SimPeer) => p.chunks.size * CHUNK_BYTES + p.otherBytes;
const fill = (p: SimPeer) => usedBytes(p) / p.capacityBytes;

interface Region {
  region: string;
  stub: DirectoryStub;
  publisher: string;
  nowMs: number;
  peers: SimPeer[];
  /** Every pinned chunk (target TARGET). */
  pinned: string[];
}

let syncCounter = 0;
/** Every frame the directory sent `peer` before it answered a request sent now (frames on one socket keep their order). */
async function framesBefore(peer: PeerSocket): Promise<DirectoryToPeer[]> {
  const id = `sync-${syncCounter++}`;
  peer.send({ type: "find_node", id, target: peer.nodeId, count: 1 });
  const frames: DirectoryToPeer[] = [];
  for (;;) {
    const frame = await peer.next();
    if (frame.type === "nodes" && frame.id === id) return frames;
    if (frame.type === "text") throw new Error(`unexpected text frame: ${frame.text}`);
    frames.push(frame);
  }
}

/** A status report with the peer's real figures: capacity, and free space from what its store holds. */
async function report(p: SimPeer): Promise<void> {
  p.socket.send({
    type: "status",
    load: { activeTransfers: 0, queueLength: 0, cpu: 0.1 },
    freeBytes: p.capacityBytes - usedBytes(p),
    capacity: { storageBytes: p.capacityBytes, uploadBps: 1e8, downloadBps: 1e8 },
  });
  expect(await framesBefore(p.socket)).toEqual([]);
}

interface PeerSpec {
  capacityBytes?: number;
  otherBytes?: number;
}

async function addPeer(r: Region, hostId: string, chunks: string[] = [], spec: PeerSpec = {}): Promise<SimPeer> {
  const nodeId = await registerPeer(r.stub, r.region, { hostId, addresses: [`http://10.0.1.${r.peers.length + 1}:7070`] });
  const p: SimPeer = { socket: await connectPeer(r.stub, nodeId, r.region), chunks: new Set(chunks), capacityBytes: spec.capacityBytes ?? CAPACITY_BYTES, otherBytes: spec.otherBytes ?? 0 };
  if (chunks.length > 0) expect(await p.socket.request({ type: "announce", id: "inv", added: chunks, removed: [] })).toEqual({ type: "ack", id: "inv" });
  await report(p);
  r.peers.push(p);
  return p;
}

/** Peers on hosts 0, 1, … (one per spec) each holding all `chunks` chunks, pinned at TARGET; by default each 80 % full. */
async function fullRegion(specs: PeerSpec[], chunks: number): Promise<Region> {
  const region = freshRegion();
  const stub = directoryStub(region);
  const nowMs = Date.now();
  await setClock(stub, nowMs);
  const publisher = await registerPeer(stub, region, { roles: ["client", "publisher"] });
  const r: Region = { region, stub, publisher, nowMs, peers: [], pinned: Array.from({ length: chunks }, () => randomCid()) };
  for (const [i, spec] of specs.entries()) await addPeer(r, `host-${i}`, r.pinned, spec);
  await stub.pin(
    publisher,
    r.pinned,
    TARGET,
    r.pinned.map(() => CHUNK_BYTES),
  );
  return r;
}

const byId = (r: Region, nodeId: string | null | undefined) => r.peers.find((p) => p.socket.nodeId === nodeId)!;
const moves = async (r: Region): Promise<RepairJob[]> => (await r.stub.repairJobs()).filter((j) => j.moveTo !== null);

/** The live (here: counting) replicas of every pinned chunk, as the directory lists them. */
async function liveReplicas(r: Region): Promise<Map<string, number>> {
  const providers = await r.stub.findProvidersBatch(r.pinned, PARAMS.k);
  return new Map(r.pinned.map((cid) => [cid, providers[cid].length]));
}

async function expectNeverBelowTarget(r: Region): Promise<void> {
  for (const [cid, n] of await liveReplicas(r)) expect(n, `live replicas of ${cid.slice(0, 12)}`).toBeGreaterThanOrEqual(TARGET);
}

/** Moves the clock on a step, has every peer report, and runs the alarm (sweep, repair, trim, rebalance). */
async function step(r: Region): Promise<void> {
  r.nowMs += STEP_MS;
  await setClock(r.stub, r.nowMs);
  for (const p of r.peers) await report(p);
  expect(await runDurableObjectAlarm(r.stub)).toBe(true);
}

describe("rebalance", () => {
  it("gives an empty newcomer a fair share: moves from the fullest peers, their copies trimmed, never below target", async () => {
    // The fullest peer by fill is the big one (92.5 %), which still has the most free bytes: trimming "the fullest
    // by free space" would take the small ones' copies, so only the move's record makes the right copy go.
    const r = await fullRegion([{ capacityBytes: 40_000, otherBytes: 29_000 }, {}, {}], 8);
    // Inside the band (80 % to 92.5 % around a mean of 84 %): nothing moves.
    await step(r);
    expect(await moves(r)).toEqual([]);
    expect((await r.stub.summary()).rebalance).toEqual({ queuedMoves: 0, runningMoves: 0, completedMoves: 0, movedBytes: 0, failedAttempts: 0 });

    const newcomer = await addPeer(r, "host-new");
    /** cid → the peer whose copy the confirmed move replaced. */
    const movedFrom = new Map<string, string>();
    const trimmed: string[] = [];
    let idleSteps = 0;
    let passes = 0;
    for (; passes < 40 && idleSteps < 2; passes++) {
      await step(r);
      const open = await moves(r);
      for (const job of open) {
        expect(job).toMatchObject({ moveTo: newcomer.socket.nodeId, target: newcomer.socket.nodeId, state: "running", missing: 0, sizeBytes: CHUNK_BYTES });
        expect(byId(r, job.moveFrom).chunks.has(job.cid)).toBe(true);
        expect(job.source).toBe(job.moveFrom); // the fuller holder serves its own move
      }
      let events = 0;
      for (const p of r.peers) {
        for (const frame of await framesBefore(p.socket)) {
          events++;
          if (frame.type === "repair") {
            // The peer's half of a move: copy, store, announce (which confirms the job).
            const job = open.find((j) => j.jobId === frame.jobId);
            expect(job, `repair ${frame.jobId} is an open move to this peer`).toMatchObject({ cid: frame.cid, target: p.socket.nodeId });
            expect(frame.source).toMatchObject({ kind: "peer", nodeId: job!.moveFrom });
            p.chunks.add(frame.cid);
            await p.socket.request({ type: "announce", id: "copy", added: [frame.cid], removed: [] });
            movedFrom.set(frame.cid, job!.moveFrom!);
          } else if (frame.type === "trim") {
            // Only a move's source is ever trimmed, for exactly the chunks it gave.
            for (const cid of frame.cids) expect(movedFrom.get(cid), `trim of ${cid.slice(0, 12)}`).toBe(p.socket.nodeId);
            for (const cid of frame.cids) p.chunks.delete(cid);
            trimmed.push(...frame.cids);
            await p.socket.request({ type: "announce", id: "trim", added: [], removed: frame.cids });
          } else {
            throw new Error(`unexpected frame ${JSON.stringify(frame)}`);
          }
          await expectNeverBelowTarget(r);
        }
      }
      idleSteps = events === 0 && open.length === 0 ? idleSteps + 1 : 0;
    }
    expect(idleSteps, "the region settled").toBe(2);

    // Every move copied a chunk onto the newcomer and trimmed its source's copy: each chunk is back at its target.
    expect(newcomer.chunks.size).toBe(movedFrom.size);
    expect(newcomer.chunks.size).toBeGreaterThan(0);
    expect(trimmed.sort()).toEqual([...movedFrom.keys()].sort());
    expect([...(await liveReplicas(r)).values()].every((n) => n === TARGET)).toBe(true);
    // Every peer ends inside the band around the mean fill (the newcomer included).
    const mean = meanFill(r.peers.map((p) => ({ usedBytes: usedBytes(p), capacityBytes: p.capacityBytes })));
    for (const p of r.peers) expect(Math.abs(fill(p) - mean)).toBeLessThanOrEqual(PARAMS.rebalanceThresholdPercent / 100);
    const percent = (x: number) => `${(100 * x).toFixed(1)} %`;
    console.log(
      `rebalance: ${movedFrom.size} moves onto the newcomer in ${passes - 2} alarm passes (${PARAMS.repairJobsPerPeer} slots a peer); ` +
        `fills ${r.peers.map((p) => percent(fill(p))).join(", ")} (newcomer last), mean ${percent(mean)}`,
    );
    // The directory agrees with the peers' stores.
    for (const cid of r.pinned) {
      const holders = (await r.stub.findProviders(cid)).map((h) => h.nodeId).sort();
      expect(holders).toEqual(
        r.peers
          .filter((p) => p.chunks.has(cid))
          .map((p) => p.socket.nodeId)
          .sort(),
      );
    }
    expect((await r.stub.summary()).rebalance).toEqual({
      queuedMoves: 0,
      runningMoves: 0,
      completedMoves: movedFrom.size,
      movedBytes: movedFrom.size * CHUNK_BYTES,
      failedAttempts: 0,
    });
    for (const p of r.peers) p.socket.close();
  });

  it("moves nothing onto a peer that shares a host with a holder", async () => {
    const r = await fullRegion([{}, {}, {}], 8);
    const sameHost = await addPeer(r, "host-0"); // empty, but on the host of a peer that holds every chunk
    await step(r);
    expect(await moves(r)).toEqual([]);
    for (const p of r.peers) expect(await framesBefore(p.socket)).toEqual([]);

    // The imbalance was real: an empty peer on a host of its own gets moves, and the one on host-0 still none.
    const elsewhere = await addPeer(r, "host-new");
    await step(r);
    const planned = await moves(r);
    expect(planned.length).toBeGreaterThan(0);
    expect(planned.every((j) => j.moveTo === elsewhere.socket.nodeId)).toBe(true);
    expect(await framesBefore(sameHost.socket)).toEqual([]);
    for (const p of r.peers) p.socket.close();
  });

  it("lets repair go first, and never moves a chunk that has repair work", async () => {
    const r = await fullRegion([{}, {}, {}], 8);
    const [a] = r.peers;
    // z is held by a alone but pinned at 2: it needs a repair job, whose source can only be a.
    const z = randomCid();
    a.chunks.add(z);
    await a.socket.request({ type: "announce", id: "z", added: [z], removed: [] });
    await r.stub.pin(r.publisher, [z], 2, [CHUNK_BYTES]);
    await addPeer(r, "host-new");
    await step(r);
    const jobs = await r.stub.repairJobs();
    const repair = jobs.filter((j) => j.moveTo === null);
    expect(repair).toMatchObject([{ cid: z, state: "running", source: a.socket.nodeId }]);
    expect(jobs.filter((j) => j.moveTo !== null && j.cid === z)).toEqual([]);
    expect(jobs.some((j) => j.moveTo !== null)).toBe(true); // the newcomer still gets moves in the slots left
    // No peer takes part in more jobs than its limit, repair and moves together.
    const load = new Map<string, number>();
    for (const j of jobs.filter((j) => j.state === "running")) for (const id of [j.source!, j.target!]) load.set(id, (load.get(id) ?? 0) + 1);
    expect(Math.max(...load.values())).toBeLessThanOrEqual(PARAMS.repairJobsPerPeer);
    for (const p of r.peers) p.socket.close();
  });

  it("drops a move its target fails, and gives that target no move until the repair backoff is over", async () => {
    const r = await fullRegion([{}, {}, {}], 8);
    const newcomer = await addPeer(r, "host-new");
    await step(r);
    const failed = await moves(r);
    expect(failed.length).toBeGreaterThan(0);
    for (const frame of await framesBefore(newcomer.socket)) {
      if (frame.type !== "repair") throw new Error(`unexpected frame ${JSON.stringify(frame)}`);
      newcomer.socket.send({ type: "repair_result", jobId: frame.jobId, cid: frame.cid, ok: false, code: "store_failed", message: "disk full" });
    }
    await step(r);
    expect(await moves(r)).toEqual([]);
    expect(await framesBefore(newcomer.socket)).toEqual([]);
    expect((await r.stub.summary()).rebalance).toMatchObject({ queuedMoves: 0, runningMoves: 0, completedMoves: 0, failedAttempts: failed.length });
    // After the backoff the newcomer is tried again.
    r.nowMs += PARAMS.repairRetryBackoffMs;
    await step(r);
    expect((await moves(r)).length).toBeGreaterThan(0);
    expect((await moves(r)).every((j) => j.moveTo === newcomer.socket.nodeId)).toBe(true);
    for (const p of r.peers) p.socket.close();
  });

  it("trims the move's source after a restart of the object, without waiting for the grace", async () => {
    const r = await fullRegion([{}, {}, {}], 8);
    const newcomer = await addPeer(r, "host-new");
    await step(r);
    const [job] = await moves(r);
    expect(job).toBeDefined();
    // The moves sent to the newcomer come first on its socket; the ack after them says the announcement was handled.
    newcomer.socket.send({ type: "announce", id: "copy", added: [job.cid], removed: [] });
    expect(await framesBefore(newcomer.socket)).toContainEqual({ type: "ack", id: "copy" });
    expect(await moves(r)).not.toContainEqual(expect.objectContaining({ jobId: job.jobId }));

    for (const p of r.peers) {
      p.socket.close();
      await p.socket.closed;
    }
    await abortAllDurableObjects();
    r.stub = directoryStub(r.region);
    await setClock(r.stub, r.nowMs + STEP_MS); // far inside the trim grace
    for (const p of r.peers) p.socket = await connectPeer(r.stub, p.socket.nodeId, r.region);
    const sent = await r.stub.trimNow();
    expect(sent[job.moveFrom!]).toContain(job.cid);
    expect(Object.keys(sent)).not.toContain(newcomer.socket.nodeId);
    for (const p of r.peers) p.socket.close();
  });
});

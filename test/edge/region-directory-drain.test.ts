/**
 * Region directory, drain and trim (issue 6 items 4–5; directory.ts
 * setDraining/drainProgress, trimmer.ts): a draining peer's chunks become
 * under-replicated, repair copies them elsewhere with the draining peer as
 * a source and never as a target, the drain's progress reaches zero once
 * the copies are confirmed, and draining survives a restart of the object;
 * over-replicated chunks are trimmed to exactly their target, draining and
 * fullest holders first. Time moves through the object's clock and the
 * alarm is run by hand, as in region-directory-repair.test.ts.
 */
import { abortAllDurableObjects, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { DirectoryToPeer, DrainProgress } from "../../src/core/messages.js";
import { PARAMS, connectPeer, directoryStub, randomCid, registerPeer, rpcError, setClock, type PeerSocket, reportStatus, storageRegion, type StorageRegion } from "./region-directory-support.js";

type RepairMessage = Extract<DirectoryToPeer, { type: "repair" }>;

async function nextOf<T extends DirectoryToPeer["type"]>(peer: PeerSocket, type: T): Promise<Extract<DirectoryToPeer, { type: T }>> {
  const frame = await peer.next();
  if (frame.type !== type) throw new Error(`expected ${type} on ${peer.nodeId.slice(0, 8)}, got ${JSON.stringify(frame)}`);
  return frame as Extract<DirectoryToPeer, { type: T }>;
}

async function drain(peer: PeerSocket, draining?: boolean): Promise<DrainProgress> {
  const reply = await peer.request({ type: "drain", id: "d", ...(draining === undefined ? {} : { draining }) });
  if (reply.type !== "drain_status") throw new Error(`expected drain_status, got ${JSON.stringify(reply)}`);
  return (reply as Extract<DirectoryToPeer, { type: "drain_status" }>).progress;
}

type Region = StorageRegion;

const region = storageRegion;

const byId = (r: Region, nodeId: string | null) => r.peers.find((p) => p.nodeId === nodeId)!;

describe("drain", () => {
  it("makes the draining peer's chunks under-replicated, repairs them from it but never onto it, and reports progress down to zero", async () => {
    const r = await region(4);
    const [a, b] = r.peers;
    const x = randomCid(); // held by a and b, factor 2
    const y = randomCid(); // held by a only, factor 1: a is its only possible source
    for (const [p, cids] of [
      [a, [x, y]],
      [b, [x]],
    ] as const)
      await p.request({ type: "announce", id: "i", added: [...cids], removed: [] });
    await r.stub.pin(r.publisher, [x], 2, [1000]);
    await r.stub.pin(r.publisher, [y], 1, [500]);
    expect(await r.stub.underReplicated()).toEqual([]);
    expect(await drain(a)).toMatchObject({ draining: false, heldChunks: 2, remainingChunks: 0, done: false });

    const started = await drain(a, true);
    expect(started).toEqual({ nodeId: a.nodeId, draining: true, heldChunks: 2, heldBytes: 1500, remainingChunks: 2, remainingBytes: 1500, repairsRunning: 0, done: false });
    expect((await r.stub.underReplicated()).map((q) => q.cid).sort()).toEqual([x, y].sort());
    // Never a placement target while draining.
    expect((await r.stub.place(4)).map((p) => p.nodeId)).not.toContain(a.nodeId);

    await runDurableObjectAlarm(r.stub);
    const jobs = await r.stub.repairJobs();
    expect(jobs).toHaveLength(2);
    for (const job of jobs) {
      expect(job.state).toBe("running");
      expect(job.target).not.toBe(a.nodeId);
      if (job.cid === y) expect(job.source).toBe(a.nodeId);
      else expect([a.nodeId, b.nodeId]).toContain(job.source);
      if (job.cid === x) expect(job.target).not.toBe(b.nodeId);
    }
    expect((await drain(a)).repairsRunning).toBe(2);

    for (const job of jobs) {
      const target = byId(r, job.target);
      const message: RepairMessage = await nextOf(target, "repair");
      expect(message.cid).toBe(job.cid);
      await target.request({ type: "announce", id: "rep", added: [job.cid], removed: [] });
    }
    expect(await r.stub.repairJobs()).toEqual([]);
    expect(await drain(a)).toEqual({ nodeId: a.nodeId, draining: true, heldChunks: 2, heldBytes: 1500, remainingChunks: 0, remainingBytes: 0, repairsRunning: 0, done: true });
    expect((await r.stub.summary()).underReplicatedChunks).toBe(0);

    // Cancelling makes a's copies count again: x and y are now over-replicated (trim's business).
    expect(await drain(a, false)).toMatchObject({ draining: false, remainingChunks: 0, done: false });
    for (const p of r.peers) p.close();
  });

  it("refuses a peer that stores nothing, over RPC and on the socket", async () => {
    const r = await region(1);
    const client = await registerPeer(r.stub, r.region, { roles: ["client"] });
    const err = await rpcError(() => r.stub.drain(client, true));
    expect(err.message).toMatch(/not_a_storage_peer/);
    const socket = await connectPeer(r.stub, client, r.region);
    expect(await socket.request({ type: "drain", id: "d", draining: true })).toMatchObject({ type: "error", id: "d", code: "not_a_storage_peer" });
    socket.close();
    r.peers[0].close();
  });

  it("keeps a peer draining across a restart of the object and across its reconnects", async () => {
    const r = await region(3);
    const [a, b] = r.peers;
    const x = randomCid();
    await a.request({ type: "announce", id: "i", added: [x], removed: [] });
    await b.request({ type: "announce", id: "i", added: [x], removed: [] });
    await r.stub.pin(r.publisher, [x], 2, [100]);
    await r.stub.drain(a.nodeId, true);
    for (const p of r.peers) {
      p.close();
      await p.closed;
    }
    await abortAllDurableObjects();
    r.stub = directoryStub(r.region);
    await setClock(r.stub, r.t0 + 1000);
    const again = await connectPeer(r.stub, a.nodeId, r.region);
    expect(await r.stub.drainProgress(a.nodeId)).toMatchObject({ draining: true, heldChunks: 1, remainingChunks: 1, done: false });
    expect((await r.stub.underReplicated()).map((q) => q.cid)).toEqual([x]);
    expect((await r.stub.place(3)).map((p) => p.nodeId)).not.toContain(a.nodeId);
    // Registering again (a restarted daemon bootstraps) does not end the drain.
    await registerPeer(r.stub, r.region, { nodeId: a.nodeId, hostId: "host-0", addresses: ["http://10.0.0.1:7070"] });
    expect((await r.stub.drainProgress(a.nodeId)).draining).toBe(true);
    again.close();
  });
});

describe("trim", () => {
  async function overReplicated(r: Region, holders: PeerSocket[], target: number): Promise<string> {
    const x = randomCid();
    for (const p of holders) await p.request({ type: "announce", id: "i", added: [x], removed: [] });
    await r.stub.pin(r.publisher, [x], target, [100]);
    return x;
  }

  /** Past the grace period with every peer still reporting, then a forced trim pass. */
  async function trimAfterGrace(r: Region, free: (i: number) => number = () => 1e9): Promise<Record<string, string[]>> {
    expect(await r.stub.trimNow()).toEqual({}); // the first pass only starts the grace
    const at = r.t0 + PARAMS.trimGraceMs;
    await setClock(r.stub, at);
    for (const [i, p] of r.peers.entries()) await reportStatus(p, free(i));
    return r.stub.trimNow();
  }

  it("removes exactly the surplus, fullest holders first, and never goes below the target", async () => {
    const free = (i: number) => [9e9, 1e6, 5e8, 2e6, 8e9][i];
    const r = await region(5, free);
    const [a, b, c, d, e] = r.peers;
    const x = await overReplicated(r, [a, b, c, d, e], 3); // 2 surplus: the fullest are b, then d
    const y = await overReplicated(r, [a, c], 2); // exactly at target
    const sent = await trimAfterGrace(r, free);
    expect(sent).toEqual({ [b.nodeId]: [x], [d.nodeId]: [x] });
    expect(await nextOf(b, "trim")).toEqual({ type: "trim", cids: [x] });
    expect(await nextOf(d, "trim")).toEqual({ type: "trim", cids: [x] });
    // Until the removals are announced, the same holders are not asked again, nor others instead.
    expect(await r.stub.trimNow()).toEqual({});
    await b.request({ type: "announce", id: "t", added: [], removed: [x] });
    await d.request({ type: "announce", id: "t", added: [], removed: [x] });
    expect(await r.stub.trimNow()).toEqual({});
    expect((await r.stub.findProviders(x)).map((p) => p.nodeId).sort()).toEqual([a.nodeId, c.nodeId, e.nodeId].sort());
    expect((await r.stub.findProviders(y)).length).toBe(2);
    for (const p of r.peers) p.close();
  });

  it("trims a draining holder first, and none of a chunk that has a repair job", async () => {
    const r = await region(4);
    const [a, b, c, d] = r.peers;
    const x = await overReplicated(r, [a, b, c], 2);
    await r.stub.drain(c.nodeId, true); // x still has a and b counting: c's copy is surplus
    const z = await overReplicated(r, [c, d], 2); // draining c leaves z short: a repair job, no trim
    await runDurableObjectAlarm(r.stub);
    const [job] = await r.stub.repairJobs();
    expect(job.cid).toBe(z);
    const sent = await trimAfterGrace(r);
    expect(sent).toEqual({ [c.nodeId]: [x] });
    for (const p of r.peers) p.close();
  });
});

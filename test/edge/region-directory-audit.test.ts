/**
 * Region directory, storage audits (auditor.ts): an audit pass from the
 * alarm sends every alive holder of a pinned chunk the same nonce and
 * range; matching proofs pass; a holder whose proof disagrees with the
 * majority, that answers `missing`, or that does not answer in time loses
 * the replica (the chunk enters the repair queue), gets a `trim` for it and
 * a failure on its record (reputation); outstanding audits survive a
 * restart of the object. Fake peers answer with the real proof function
 * over fake chunk bytes; time moves through setClock, and the alarm is run
 * by hand.
 */
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { RegionDirectory } from "../../durable-objects/region-directory.js";
import { auditProofOfChunk } from "../../src/core/audit.js";
import { randomBytes } from "../../src/core/bytes.js";
import type { DirectoryToPeer } from "../../src/core/messages.js";
import { PARAMS, connectPeer, directoryStub, freshRegion, randomCid, registerPeer, setClock, type DirectoryStub, type PeerSocket, reportStatus } from "./region-directory-support.js";

type AuditMessage = Extract<DirectoryToPeer, { type: "audit" }>;
const SIZE = 200_000;

/** Waits until the directory handled everything `peer` sent so far; returns the frames that came before the reply. */
async function sync(peer: PeerSocket): Promise<unknown[]> {
  peer.send({ type: "find_node", id: "sync", target: peer.nodeId, count: 1 });
  const before: unknown[] = [];
  for (;;) {
    const frame = await peer.next();
    if (frame.type === "nodes" && frame.id === "sync") return before;
    before.push(frame);
  }
}

async function nextAudit(peer: PeerSocket): Promise<AuditMessage> {
  const frame = await peer.next();
  if (frame.type !== "audit") throw new Error(`expected an audit on ${peer.nodeId.slice(0, 8)}, got ${JSON.stringify(frame)}`);
  return frame;
}

interface Region {
  region: string;
  stub: DirectoryStub;
  t0: number;
  peers: PeerSocket[];
  cid: string;
  chunk: Uint8Array;
}

/** `holders` storage peers on distinct hosts holding one chunk pinned at `target`; the audit clock is started by a first alarm. */
async function region(holders: number, target = holders): Promise<Region> {
  const region = freshRegion();
  const stub = directoryStub(region);
  const t0 = Date.now();
  await setClock(stub, t0);
  const publisher = await registerPeer(stub, region, { roles: ["client", "publisher"] });
  const peers: PeerSocket[] = [];
  for (let i = 0; i < holders; i++) {
    const id = await registerPeer(stub, region, { hostId: `host-${i}`, addresses: [`http://10.0.0.${i + 1}:7070`] });
    peers.push(await connectPeer(stub, id, region));
  }
  const cid = randomCid();
  const chunk = randomBytes(SIZE);
  for (const p of peers) {
    await reportStatus(p);
    await p.request({ type: "announce", id: "x", added: [cid], removed: [] });
  }
  await stub.pin(publisher, [cid], target, [SIZE]);
  await runDurableObjectAlarm(stub);
  return { region, stub, t0, peers, cid, chunk };
}

/** Moves the clock to `atMs`, keeps `alive` talking, and runs the alarm. */
async function advance(r: Region, atMs: number, alive: PeerSocket[]): Promise<void> {
  await setClock(r.stub, atMs);
  for (const p of alive) await reportStatus(p);
  await runDurableObjectAlarm(r.stub);
}

const honest = (r: Region, audit: AuditMessage) => auditProofOfChunk(audit.nonce, r.chunk, audit.offset, audit.length);

function answer(peer: PeerSocket, audit: AuditMessage, proof: string): void {
  peer.send({ type: "audit_result", jobId: audit.jobId, cid: audit.cid, ok: true, proof });
}

async function auditRecord(stub: DirectoryStub, nodeId: string): Promise<{ passed: number; failed: number }> {
  return runInDurableObject(stub, (_obj: RegionDirectory, state) =>
    state.storage.sql.exec<{ passed: number; failed: number }>(`SELECT audits_passed AS passed, audits_failed AS failed FROM peers WHERE node_id = ?`, nodeId).one(),
  );
}

async function holders(stub: DirectoryStub, cid: string): Promise<string[]> {
  return (await stub.findProviders(cid)).map((p) => p.nodeId).sort();
}

describe("audits", () => {
  it("sends every holder the same nonce and range after an interval, and passes holders whose proofs agree", async () => {
    const r = await region(3);
    // The first alarm only started the audit clock: nothing was sent.
    expect(await r.stub.audits()).toEqual([]);
    await advance(r, r.t0 + PARAMS.auditIntervalMs, r.peers);
    const audits = await Promise.all(r.peers.map((p) => nextAudit(p)));
    const [first] = audits;
    expect(first).toMatchObject({ type: "audit", cid: r.cid, timeoutMs: PARAMS.auditTimeoutMs, length: Math.min(PARAMS.auditRangeBytes, SIZE) });
    expect(first.nonce).toMatch(/^[0-9a-f]{32}$/);
    expect(first.offset + first.length).toBeLessThanOrEqual(SIZE);
    for (const a of audits) expect(a).toEqual(first);
    expect(await r.stub.audits()).toHaveLength(3);
    expect((await r.stub.summary()).audits).toEqual({ pendingAudits: 3, passed: 0, failed: 0, inconclusive: 0, lowReputationPeers: 0 });

    r.peers.forEach((p, i) => answer(p, audits[i], honest(r, audits[i])));
    for (const p of r.peers) await reportStatus(p);
    expect(await r.stub.audits()).toEqual([]);
    const summary = await r.stub.summary();
    expect(summary.audits).toEqual({ pendingAudits: 0, passed: 3, failed: 0, inconclusive: 0, lowReputationPeers: 0 });
    expect(summary).toMatchObject({ replicas: 3, underReplicatedChunks: 0 });
    for (const p of r.peers) expect(await auditRecord(r.stub, p.nodeId)).toEqual({ passed: 1, failed: 0 });
    // A late or repeated answer changes nothing.
    answer(r.peers[0], audits[0], honest(r, audits[0]));
    await reportStatus(r.peers[0]);
    expect((await r.stub.summary()).audits.passed).toBe(3);
    for (const p of r.peers) p.close();
  });

  for (const misbehaviour of ["a wrong proof", "missing", "no answer"] as const) {
    it(`takes the replica and reputation of a holder answering ${misbehaviour}, and queues the chunk for repair`, async () => {
      const r = await region(3);
      const [a, b, c] = r.peers;
      await advance(r, r.t0 + PARAMS.auditIntervalMs, r.peers);
      const audits = await Promise.all(r.peers.map((p) => nextAudit(p)));
      answer(a, audits[0], honest(r, audits[0]));
      answer(b, audits[1], honest(r, audits[1]));
      if (misbehaviour === "a wrong proof") answer(c, audits[2], "0".repeat(64));
      if (misbehaviour === "missing") c.send({ type: "audit_result", jobId: audits[2].jobId, cid: r.cid, ok: false, code: "missing", message: "gone" });
      for (const p of [a, b]) await reportStatus(p);
      let framesOfC = await sync(c);
      if (misbehaviour === "no answer") {
        // Still waiting for c: nothing judged before the deadline.
        expect(await r.stub.audits()).toHaveLength(3);
        await advance(r, r.t0 + PARAMS.auditIntervalMs + PARAMS.auditTimeoutMs, [a, b]);
        framesOfC = await sync(c);
      }

      expect(await r.stub.audits()).toEqual([]);
      expect(framesOfC).toEqual([{ type: "trim", cids: [r.cid] }]);
      expect(await holders(r.stub, r.cid)).toEqual([a.nodeId, b.nodeId].sort());
      expect(await r.stub.underReplicated()).toEqual([expect.objectContaining({ cid: r.cid, missing: 1 })]);
      expect(await auditRecord(r.stub, c.nodeId)).toEqual({ passed: 0, failed: 1 });
      expect(await auditRecord(r.stub, a.nodeId)).toEqual({ passed: 1, failed: 0 });
      const summary = await r.stub.summary();
      expect(summary.audits).toEqual({ pendingAudits: 0, passed: 2, failed: 1, inconclusive: 0, lowReputationPeers: 1 });
      expect(summary).toMatchObject({ replicas: 2, underReplicatedChunks: 1 });
      // The existing repair loop takes it from here: a job is planned for the lost replica.
      await runDurableObjectAlarm(r.stub);
      expect((await r.stub.repairJobs()).map((j) => j.cid)).toEqual([r.cid]);
      for (const p of r.peers) p.close();
    });
  }

  it("judges nobody when two proofs disagree with no majority", async () => {
    const r = await region(2);
    const [a, b] = r.peers;
    await advance(r, r.t0 + PARAMS.auditIntervalMs, r.peers);
    const [qa, qb] = await Promise.all([nextAudit(a), nextAudit(b)]);
    answer(a, qa, honest(r, qa));
    answer(b, qb, "f".repeat(64));
    for (const p of r.peers) await reportStatus(p);
    expect((await r.stub.summary()).audits).toMatchObject({ passed: 0, failed: 0, inconclusive: 2 });
    expect(await holders(r.stub, r.cid)).toEqual([a.nodeId, b.nodeId].sort());
    for (const p of r.peers) p.close();
  });

  it("keeps outstanding audits across a restart: answers after it are judged, and silence times out", async () => {
    const r = await region(3);
    const [a, b, c] = r.peers;
    const sentAt = r.t0 + PARAMS.auditIntervalMs;
    await advance(r, sentAt, r.peers);
    const audits = await Promise.all(r.peers.map((p) => nextAudit(p)));
    answer(a, audits[0], honest(r, audits[0]));
    await reportStatus(a);
    const before = await r.stub.audits();
    expect(before).toHaveLength(3);

    for (const p of r.peers) {
      p.close();
      await p.closed;
    }
    await abortAllDurableObjects();
    r.stub = directoryStub(r.region);
    expect(await r.stub.audits()).toEqual(before);
    expect(await runInDurableObject(r.stub, (_obj: RegionDirectory, state) => state.storage.getAlarm())).not.toBeNull();

    // b reconnects and answers the audit it got before the restart; c stays silent until the deadline.
    await setClock(r.stub, sentAt + 1000);
    const [a2, b2, c2] = await Promise.all([a, b, c].map((p) => connectPeer(r.stub, p.nodeId, r.region)));
    answer(b2, audits[1], honest(r, audits[1]));
    await reportStatus(b2);
    expect(await r.stub.audits()).toHaveLength(3);
    await setClock(r.stub, sentAt + PARAMS.auditTimeoutMs);
    for (const p of [a2, b2, c2]) await reportStatus(p);
    await runDurableObjectAlarm(r.stub);
    expect(await r.stub.audits()).toEqual([]);
    expect(await auditRecord(r.stub, a.nodeId)).toEqual({ passed: 1, failed: 0 });
    expect(await auditRecord(r.stub, b.nodeId)).toEqual({ passed: 1, failed: 0 });
    expect(await auditRecord(r.stub, c.nodeId)).toEqual({ passed: 0, failed: 1 });
    expect(await holders(r.stub, r.cid)).toEqual([a.nodeId, b.nodeId].sort());
    for (const p of [a2, b2, c2]) p.close();
  });
});

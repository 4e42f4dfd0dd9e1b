/**
 * Region directory, replica repair (repair-scheduler.ts, repair-jobs.ts):
 * a dead holder's chunks become jobs with a live source and a target on
 * another host, sent over the target's WebSocket and confirmed by its
 * announcement; failures are retried with another target or source; a
 * chunk with no live holder is repaired from R2; the most endangered chunk
 * goes first when peers' repair slots are scarce; jobs survive a restart of
 * the object. Time moves through the object's clock (setClock) and the
 * alarm is run by hand (runDurableObjectAlarm): nothing waits.
 */
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { RegionDirectory } from "../../durable-objects/region-directory.js";
import type { DirectoryToPeer } from "../../src/core/messages.js";
import { PARAMS, connectPeer, directoryStub, randomCid, reportStatus, setClock, storageRegion, type PeerSocket, type StorageRegion } from "./region-directory-support.js";

const DEAD_MS = PARAMS.heartbeatIntervalMs * PARAMS.deadAfterMissedHeartbeats;
type RepairMessage = Extract<DirectoryToPeer, { type: "repair" }>;

/** The next frame on a peer's socket, which must be a repair job. */
async function nextRepair(peer: PeerSocket): Promise<RepairMessage> {
  const frame = await peer.next();
  if (frame.type !== "repair") throw new Error(`expected a repair job on ${peer.nodeId.slice(0, 8)}, got ${JSON.stringify(frame)}`);
  return frame;
}

type Region = StorageRegion;

const region = storageRegion;

/** Moves the clock to `atMs`, keeps `alive` talking, and runs the alarm (liveness sweep, then a repair pass). */
async function advance(r: Region, atMs: number, alive: PeerSocket[]): Promise<void> {
  await setClock(r.stub, atMs);
  for (const p of alive) await reportStatus(p);
  await runDurableObjectAlarm(r.stub);
}

const byId = (r: Region, nodeId: string | null) => r.peers.find((p) => p.nodeId === nodeId)!;

describe("repair", () => {
  it("plans a job when a holder dies, dispatches it to a peer on another host with a live source, and confirms it on announce", async () => {
    const r = await region(5);
    const [a, b, c, d, e] = r.peers;
    const x = randomCid();
    for (const p of [a, b, c]) await p.request({ type: "announce", id: "x", added: [x], removed: [] });
    await r.stub.pin(r.publisher, [x], 3, [4096]);
    expect(await r.stub.repairJobs()).toEqual([]);

    // c falls silent and dies; the alarm's sweep queues x, its repair pass plans and dispatches a job.
    await advance(r, r.t0 + DEAD_MS, [a, b, d, e]);
    expect(await r.stub.peerState(c.nodeId)).toBe("dead");
    const [job] = await r.stub.repairJobs();
    expect(job).toMatchObject({ cid: x, state: "running", attempts: 1, missing: 1, sizeBytes: 4096 });
    expect([a.nodeId, b.nodeId]).toContain(job.source);
    expect([d.nodeId, e.nodeId]).toContain(job.target);
    const message = await nextRepair(byId(r, job.target));
    expect(message).toEqual({
      type: "repair",
      jobId: job.jobId,
      cid: x,
      sizeBytes: 4096,
      source: { kind: "peer", nodeId: job.source, addresses: [expect.stringMatching(/^http:\/\/10\.0\.0\.\d:7070$/)] },
      timeoutMs: PARAMS.repairJobTimeoutMs,
    });
    expect((await r.stub.summary()).repair).toEqual({ queuedJobs: 0, runningJobs: 1, failedJobs: 0, completedJobs: 0, failedAttempts: 0, bytesRepaired: 0 });

    // The target copies, stores and announces: that confirms the job; the chunk is back at 3 live replicas.
    const target = byId(r, job.target);
    expect(await target.request({ type: "announce", id: "done", added: [x], removed: [] })).toEqual({ type: "ack", id: "done" });
    expect(await r.stub.repairJobs()).toEqual([]);
    expect(await r.stub.underReplicated()).toEqual([]);
    const summary = await r.stub.summary();
    expect(summary).toMatchObject({ underReplicatedChunks: 0, replicas: 3 });
    expect(summary.repair).toEqual({ queuedJobs: 0, runningJobs: 0, failedJobs: 0, completedJobs: 1, failedAttempts: 0, bytesRepaired: 4096 });
    // A late result for the confirmed job changes nothing.
    target.send({ type: "repair_result", jobId: job.jobId, cid: x, ok: true, sizeBytes: 4096 });
    await reportStatus(target);
    expect((await r.stub.summary()).repair.completedJobs).toBe(1);
    for (const p of r.peers) p.close();
  });

  it("retries a failed job with another target, and a source failure with another source, then confirms on a done result", async () => {
    const r = await region(6);
    const [a, b, c, ...free] = r.peers;
    const x = randomCid();
    for (const p of [a, b, c]) await p.request({ type: "announce", id: "x", added: [x], removed: [] });
    await r.stub.pin(r.publisher, [x], 3, [1000]);
    await advance(r, r.t0 + DEAD_MS, [a, b, ...free]);

    // First target cannot store: the job goes to another target, never the one that failed.
    const [first] = await r.stub.repairJobs();
    const firstTarget = byId(r, first.target);
    expect(free).toContain(firstTarget);
    await nextRepair(firstTarget);
    firstTarget.send({ type: "repair_result", jobId: first.jobId, cid: x, ok: false, code: "store_failed", message: "disk full" });
    await reportStatus(firstTarget);
    await runDurableObjectAlarm(r.stub);
    const [second] = await r.stub.repairJobs();
    expect(second).toMatchObject({ jobId: first.jobId, state: "running", attempts: 2, avoidTargets: [first.target], source: first.source });
    expect(second.target).not.toBe(first.target);
    expect(free.map((p) => p.nodeId)).toContain(second.target);

    // Second target cannot reach the source: same target may stay, the other holder becomes the source.
    const secondTarget = byId(r, second.target);
    await nextRepair(secondTarget);
    secondTarget.send({ type: "repair_result", jobId: second.jobId, cid: x, ok: false, code: "source_unreachable", message: "connection refused" });
    await reportStatus(secondTarget);
    await runDurableObjectAlarm(r.stub);
    const [third] = await r.stub.repairJobs();
    expect(third).toMatchObject({ state: "running", attempts: 3, avoidSources: [first.source] });
    expect(third.source).toBe(first.source === a.nodeId ? b.nodeId : a.nodeId);
    const thirdTarget = byId(r, third.target);
    const message = await nextRepair(thirdTarget);
    expect(message.source).toMatchObject({ kind: "peer", nodeId: third.source });

    // A result from a peer that is not the job's target is ignored.
    a.send({ type: "repair_result", jobId: third.jobId, cid: x, ok: false, code: "failed", message: "not mine" });
    await reportStatus(a);
    expect((await r.stub.repairJobs())[0]).toMatchObject({ state: "running", attempts: 3 });

    // Done: announced first (as the peer does), then the result; the job is confirmed once.
    await thirdTarget.request({ type: "announce", id: "ok", added: [x], removed: [] });
    thirdTarget.send({ type: "repair_result", jobId: third.jobId, cid: x, ok: true, sizeBytes: 1000 });
    await reportStatus(thirdTarget);
    expect(await r.stub.repairJobs()).toEqual([]);
    expect((await r.stub.summary()).repair).toEqual({ queuedJobs: 0, runningJobs: 0, failedJobs: 0, completedJobs: 1, failedAttempts: 2, bytesRepaired: 1000 });
    for (const p of r.peers) p.close();
  });

  it("after the last attempt fails the job backs off, then starts over; a timed-out job is retried elsewhere", async () => {
    const r = await region(6);
    const [a, b, c, d, e, f] = r.peers;
    const x = randomCid();
    for (const p of [a, b, c]) await p.request({ type: "announce", id: "x", added: [x], removed: [] });
    await r.stub.pin(r.publisher, [x], 3, [1000]);
    const deadAt = r.t0 + DEAD_MS;
    const alive = [a, b, d, e, f];
    await advance(r, deadAt, alive);

    // Every attempt times out (the targets never answer).
    let now = deadAt;
    const targets: string[] = [];
    for (let attempt = 1; attempt <= PARAMS.repairMaxAttempts; attempt++) {
      const [job] = await r.stub.repairJobs();
      expect(job).toMatchObject({ state: "running", attempts: attempt });
      targets.push(job.target!);
      await nextRepair(byId(r, job.target));
      now += PARAMS.repairJobTimeoutMs;
      await advance(r, now, alive);
    }
    // Each attempt went to another peer; with its attempts used up, the job now waits.
    expect(new Set(targets)).toEqual(new Set([d.nodeId, e.nodeId, f.nodeId]));
    const [parked] = await r.stub.repairJobs();
    expect(parked).toMatchObject({ state: "failed", lastError: "timeout", notBeforeMs: now + PARAMS.repairRetryBackoffMs });
    expect((await r.stub.summary()).repair).toMatchObject({ failedJobs: 1, failedAttempts: PARAMS.repairMaxAttempts });

    // After the backoff it starts a new round with nothing avoided.
    await advance(r, now + PARAMS.repairRetryBackoffMs, alive);
    const [again] = await r.stub.repairJobs();
    expect(again).toMatchObject({ jobId: parked.jobId, state: "running", attempts: 1, avoidTargets: [] });
    for (const p of r.peers) p.close();
  });

  it("counts an attempt given up on as done when its target announces the chunk after all (its result lost, or late)", async () => {
    const r = await region(4);
    const [a, b, c, d] = r.peers;
    const x = randomCid();
    for (const p of [a, b, c]) await p.request({ type: "announce", id: "x", added: [x], removed: [] });
    await r.stub.pin(r.publisher, [x], 3, [1000]);
    await advance(r, r.t0 + DEAD_MS, [a, b, d]);
    const [job] = await r.stub.repairJobs();
    expect(job).toMatchObject({ state: "running", target: d.nodeId });
    await nextRepair(d);

    // The deadline passes without word from d: the attempt is given up and, with no other host free, the job waits.
    await advance(r, job.deadlineMs!, [a, b, d]);
    const [waiting] = await r.stub.repairJobs();
    expect(waiting).toMatchObject({ jobId: job.jobId, state: "queued", lastError: "timeout", avoidTargets: [d.nodeId] });

    // d finished the copy all the same (as a target whose result was lost across a restart of the directory does):
    // its announcement ends the job as done, and the bytes count.
    expect(await d.request({ type: "announce", id: "late", added: [x], removed: [] })).toEqual({ type: "ack", id: "late" });
    expect(await r.stub.repairJobs()).toEqual([]);
    expect(await r.stub.underReplicated()).toEqual([]);
    expect((await r.stub.summary()).repair).toEqual({ queuedJobs: 0, runningJobs: 0, failedJobs: 0, completedJobs: 1, failedAttempts: 1, bytesRepaired: 1000 });
    for (const p of r.peers) p.close();
  });

  it("repairs from R2 when no live holder is left", async () => {
    const r = await region(3);
    const [a, b, c] = r.peers;
    const x = randomCid();
    await a.request({ type: "announce", id: "x", added: [x], removed: [] });
    await r.stub.pin(r.publisher, [x], 2, [2048]);
    // x is short of one replica already: a job copies it from a to b or c.
    await runDurableObjectAlarm(r.stub);
    const [fromPeer] = await r.stub.repairJobs();
    expect(fromPeer).toMatchObject({ source: a.nodeId, state: "running" });
    await nextRepair(byId(r, fromPeer.target));

    // a dies before it is done: the job fails (blaming its source), and with no live holder left both jobs (x now lacks two) copy from R2.
    await advance(r, r.t0 + DEAD_MS, [b, c]);
    const jobs = await r.stub.repairJobs();
    expect(jobs.map((j) => [j.source, j.state])).toEqual([
      ["r2", "running"],
      ["r2", "running"],
    ]);
    const messages = await Promise.all(jobs.map((j) => nextRepair(byId(r, j.target))));
    for (const m of messages) expect(m.source).toEqual({ kind: "r2" });
    for (const p of r.peers) p.close();
  });

  it("never stalls when every peer is some job's source: jobs start within each peer's limit", async () => {
    const r = await region(4);
    // Each peer alone holds two chunks short of one replica: 8 jobs whose sources would take every repair slot.
    const chunks = r.peers.map(() => [randomCid(), randomCid()]);
    for (const [i, p] of r.peers.entries()) await p.request({ type: "announce", id: "a", added: chunks[i], removed: [] });
    await r.stub.pin(
      r.publisher,
      chunks.flat(),
      2,
      chunks.flat().map(() => 10),
    );
    await runDurableObjectAlarm(r.stub);
    const running = (await r.stub.repairJobs()).filter((j) => j.state === "running");
    expect(running.length).toBeGreaterThanOrEqual(2);
    const load = new Map<string, number>();
    for (const j of running) for (const id of [j.source!, j.target!]) load.set(id, (load.get(id) ?? 0) + 1);
    expect(Math.max(...load.values())).toBeLessThanOrEqual(PARAMS.repairJobsPerPeer);
    for (const p of r.peers) p.close();
  });

  it("dispatches the most endangered chunk first when repair slots are scarce", async () => {
    const r = await region(5);
    const [a, , , d, e] = r.peers;
    // a holds three chunks alone; x needs 2 more replicas, y and z 1 each. a serves at most repairJobsPerPeer jobs at once.
    const [x, y, z] = [randomCid(), randomCid(), randomCid()];
    await a.request({ type: "announce", id: "a", added: [y, z, x], removed: [] });
    await r.stub.pin(r.publisher, [y], 2, [10]);
    await r.stub.pin(r.publisher, [z], 2, [10]);
    await r.stub.pin(r.publisher, [x], 3, [10]);
    await runDurableObjectAlarm(r.stub);
    const jobs = await r.stub.repairJobs();
    const running = jobs.filter((j) => j.state === "running");
    expect(running).toHaveLength(PARAMS.repairJobsPerPeer);
    expect(running.every((j) => j.cid === x && j.source === a.nodeId)).toBe(true);
    expect(new Set(running.map((j) => j.target)).size).toBe(running.length);
    expect(
      jobs
        .filter((j) => j.state === "queued")
        .map((j) => j.cid)
        .sort(),
    ).toEqual([y, z].sort());
    for (const j of running) await nextRepair(byId(r, j.target));
    expect(running.map((j) => j.target).every((t) => t !== a.nodeId && [d.nodeId, e.nodeId, r.peers[1].nodeId, r.peers[2].nodeId].includes(t!))).toBe(true);
    for (const p of r.peers) p.close();
  });

  it("keeps its jobs across a restart of the object, with the alarm still armed for their deadline", async () => {
    const r = await region(4);
    const [a, b, c] = r.peers;
    const x = randomCid();
    for (const p of [a, b, c]) await p.request({ type: "announce", id: "x", added: [x], removed: [] });
    await r.stub.pin(r.publisher, [x], 3, [1000]);
    await advance(r, r.t0 + DEAD_MS, [a, b, r.peers[3]]);
    const [before] = await r.stub.repairJobs();
    expect(before.state).toBe("running");

    for (const p of r.peers) {
      p.close();
      await p.closed;
    }
    await abortAllDurableObjects();
    // A new instance: same rows, same job, and an alarm to time it out.
    r.stub = directoryStub(r.region);
    expect(await r.stub.repairJobs()).toEqual([before]);
    expect(await runInDurableObject(r.stub, (_obj: RegionDirectory, state) => state.storage.getAlarm())).not.toBeNull();

    // Its target never answers (its socket went with the old instance): past the deadline it is retried, on a reconnected peer.
    const at = before.deadlineMs!;
    await setClock(r.stub, at);
    const peers = await Promise.all([a, b, r.peers[3]].map((p) => connectPeer(r.stub, p.nodeId, r.region)));
    await runDurableObjectAlarm(r.stub);
    const [after] = await r.stub.repairJobs();
    expect(after).toMatchObject({ jobId: before.jobId, cid: x, attempts: 1, lastError: "timeout", avoidTargets: [before.target] });
    expect(after.state).toBe("queued"); // the only other free host was the old target: it waits for one
    for (const p of peers) p.close();
  });
});

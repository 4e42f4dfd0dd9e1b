/**
 * Region directory, cold tier (cold-tier.ts): a pinned chunk nobody looked
 * up for `coldAfterMs` and that is in R2 becomes cold — out of the repair
 * queue, its replicas trimmed after the grace — while one missing from R2
 * stays warm; the next provider lookup warms it, and repair restores its
 * replicas from R2. Time moves through setClock; the alarm is run by hand.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { PARAMS, connectPeer, directoryStub, freshRegion, randomCid, registerPeer, setClock, type PeerSocket, reportStatus } from "./region-directory-support.js";

/** Waits until the directory handled everything `peer` sent; returns the frames that came before the reply. */
async function sync(peer: PeerSocket): Promise<{ type: string; cids?: string[] }[]> {
  peer.send({ type: "find_node", id: "sync", target: peer.nodeId, count: 1 });
  const before: { type: string; cids?: string[] }[] = [];
  for (;;) {
    const frame = await peer.next();
    if (frame.type === "nodes" && frame.id === "sync") return before;
    before.push(frame as { type: string; cids?: string[] });
  }
}

describe("cold tier", () => {
  it("drops an unwanted chunk that is in R2 to cold, evicts its replicas, and brings it back from R2 on a lookup", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const t0 = Date.now();
    await setClock(stub, t0);
    const publisher = await registerPeer(stub, region, { roles: ["client", "publisher"] });
    const peers: PeerSocket[] = [];
    for (let i = 0; i < 4; i++) {
      const id = await registerPeer(stub, region, { hostId: `host-${i}`, addresses: [`http://10.0.0.${i + 1}:7070`] });
      peers.push(await connectPeer(stub, id, region));
    }
    const [a, b, c] = peers;
    const x = randomCid(); // in R2
    const y = randomCid(); // not in R2: never dropped to
    await env.CHUNKS.put(x, new Uint8Array([1, 2, 3]));
    for (const p of [a, b, c]) await p.request({ type: "announce", id: "x", added: [x, y], removed: [] });
    await stub.pin(publisher, [x, y], 3, [3, 3]);
    for (const p of peers) await reportStatus(p);

    // Wanted recently (pin time): nothing goes cold.
    expect(await stub.coldNow()).toEqual([]);

    const coldAt = t0 + PARAMS.coldAfterMs + 1;
    await setClock(stub, coldAt);
    for (const p of peers) await reportStatus(p);
    await runDurableObjectAlarm(stub);
    let summary = await stub.summary();
    expect(summary).toMatchObject({ coldChunks: 1, underReplicatedChunks: 0 });

    // After the trim grace, every holder of x is asked to delete it; y keeps its replicas.
    await setClock(stub, coldAt + PARAMS.trimGraceMs);
    for (const p of peers) await reportStatus(p);
    await runDurableObjectAlarm(stub);
    for (const p of [a, b, c]) {
      const trims = (await sync(p)).filter((f) => f.type === "trim");
      expect(trims.flatMap((f) => f.cids)).toEqual([x]);
      await p.request({ type: "announce", id: "gone", added: [], removed: [x] });
    }
    expect(await stub.findProviders(y)).toHaveLength(3);
    summary = await stub.summary();
    expect(summary).toMatchObject({ coldChunks: 1, underReplicatedChunks: 0 });

    // A downloader looks x up: it is warm again, missing all three replicas, and repair copies them from R2.
    const looked = await peers[3].request({ type: "find_providers", id: "want", cid: x });
    expect(looked).toMatchObject({ type: "providers", providers: [] });
    expect(await stub.underReplicated()).toEqual([expect.objectContaining({ cid: x, missing: 3 })]);
    expect((await stub.summary()).coldChunks).toBe(0);
    await runDurableObjectAlarm(stub);
    const jobs = await stub.repairJobs();
    expect(jobs.length).toBeGreaterThan(0);
    expect(jobs.every((j) => j.cid === x)).toBe(true);
    expect(jobs.filter((j) => j.state === "running").every((j) => j.source === "r2")).toBe(true);
    for (const p of peers) p.close();
  });
});

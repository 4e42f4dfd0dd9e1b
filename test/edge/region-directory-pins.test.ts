/**
 * Region directory, pin ownership: a pin belongs to the publisher that set
 * it, a chunk's target is the highest of its pinners', `replicas: 0`
 * withdraws only the caller's own pin, and the chunk is unpinned when no
 * pinner remains. Also the schema step that brings an existing (version 1)
 * database's pins over to per-publisher pins.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { RegionDirectory } from "../../durable-objects/region-directory.js";
import { migrate, SCHEMA_VERSION } from "../../durable-objects/region-directory/schema.js";
import { connectPeer, directoryStub, freshRegion, randomCid, registerPeer } from "./region-directory-support.js";

describe("pin ownership", () => {
  it("keeps the highest pinner's target, withdraws only the caller's pin, and unpins when no pinner remains", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const p1 = await registerPeer(stub, region, { roles: ["client", "publisher"] });
    const p2 = await registerPeer(stub, region, { roles: ["client", "publisher"] });
    const p3 = await registerPeer(stub, region, { roles: ["client", "publisher"] });
    const holder = await registerPeer(stub, region);
    const holderSocket = await connectPeer(stub, holder, region);
    const [x, y] = [randomCid(), randomCid()];
    expect(await holderSocket.request({ type: "announce", id: "a", added: [x], removed: [] })).toEqual({ type: "ack", id: "a" });
    // CID → missing replicas (an object: ties in the queue's order are not this test's business).
    const queue = async () => Object.fromEntries((await stub.underReplicated()).map((q) => [q.cid, q.missing]));

    // Two publishers pin x (one live replica) with 2 and 3: the target is 3, so 2 are missing.
    await stub.pin(p1, [x, y], 2, [100, 200]);
    await stub.pin(p2, [x], 3);
    expect(await queue()).toEqual({ [x]: 2, [y]: 2 });

    // p2 withdraws: p1's 2 remains.
    await stub.pin(p2, [x], 0);
    expect(await queue()).toEqual({ [y]: 2, [x]: 1 });
    // A third publisher that never pinned x or y changes nothing by unpinning them.
    await stub.pin(p3, [x, y], 0);
    expect(await queue()).toEqual({ [y]: 2, [x]: 1 });
    expect((await stub.summary()).pinnedChunks).toBe(2);

    // A pinner can lower its own target; the others' still count.
    await stub.pin(p2, [x], 3);
    await stub.pin(p1, [x], 1);
    expect(await queue()).toEqual({ [x]: 2, [y]: 2 });

    // Both withdraw: x is unpinned and leaves the queue; y is still p1's.
    await stub.pin(p1, [x], 0);
    expect(await queue()).toEqual({ [x]: 2, [y]: 2 });
    await stub.pin(p2, [x], 0);
    expect(await queue()).toEqual({ [y]: 2 });
    expect(await stub.summary()).toMatchObject({ pinnedChunks: 1, storedBytes: 0 });
    // The replica itself is untouched: unpinning is about the target, not the holders.
    expect((await stub.findProviders(x)).map((p) => p.nodeId)).toEqual([holder]);

    // The same over the WebSocket: a downloader with the publisher role cannot unpin the publisher's chunk.
    const downloader = await connectPeer(stub, p3, region);
    expect(await downloader.request({ type: "pin", id: "u", cids: [y], replicas: 0 })).toEqual({ type: "ack", id: "u" });
    expect(await queue()).toEqual({ [y]: 2 });
    holderSocket.close();
    downloader.close();
  });

  it("migrates a version-1 database: each existing pin becomes its recorded publisher's pin", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const publisher = await registerPeer(stub, region, { roles: ["client", "publisher"] });
    const other = await registerPeer(stub, region, { roles: ["client", "publisher"] });
    const holder = await registerPeer(stub, region);
    const cid = randomCid();

    // Rebuild the tables step 2 changed as version 1 left them, with data, and run the migration again.
    await runInDurableObject(stub, (_obj: RegionDirectory, state) => {
      const sql = state.storage.sql;
      sql.exec(`DROP TABLE pinners`);
      sql.exec(`DROP TABLE replica_syncs`);
      sql.exec(`DROP TABLE replicas`);
      sql.exec(`CREATE TABLE replicas (cid TEXT NOT NULL, node_id TEXT NOT NULL, PRIMARY KEY (cid, node_id)) WITHOUT ROWID`);
      sql.exec(`CREATE INDEX replicas_by_node ON replicas (node_id, cid)`);
      sql.exec(`INSERT INTO replicas (cid, node_id) VALUES (?, ?)`, cid, holder);
      sql.exec(`INSERT INTO pins (cid, target, size_bytes, live_count, pinned_by, pinned_ms) VALUES (?, 3, 10, 1, ?, 1)`, cid, publisher);
      sql.exec(`INSERT INTO under_replicated (cid, missing, since_ms) VALUES (?, 2, 1)`, cid);
      sql.exec(`UPDATE meta SET value = '1' WHERE key = 'schema_version'`);
      migrate(sql);
      expect(sql.exec(`SELECT value FROM meta WHERE key = 'schema_version'`).one().value).toBe(String(SCHEMA_VERSION));
      expect(sql.exec(`SELECT cid, node_id, target FROM pinners`).toArray()).toEqual([{ cid, node_id: publisher, target: 3 }]);
      expect(sql.exec(`SELECT cid, node_id, epoch FROM replicas`).toArray()).toEqual([{ cid, node_id: holder, epoch: null }]);
    });

    expect(await stub.underReplicated()).toEqual([{ cid, missing: 2, sinceMs: 1 }]);
    await stub.pin(other, [cid], 0);
    expect((await stub.underReplicated()).map((q) => q.cid)).toEqual([cid]);
    await stub.pin(publisher, [cid], 0);
    expect(await stub.underReplicated()).toEqual([]);
    expect((await stub.summary()).pinnedChunks).toBe(0);
    expect((await stub.findProviders(cid)).map((p) => p.nodeId)).toEqual([holder]);
  });
});

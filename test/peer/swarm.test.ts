/**
 * Swarms (src/peer/swarm.ts): concurrent downloaders of one file trade
 * pieces among themselves, so the publisher sends each piece about once.
 *
 * Real parts: every peer has a real ChunkStore, a real TransferServer on
 * loopback (sessions, certificates, the swarm view route) and a real
 * TransferClient; the publisher's uplink is capped by its UploadLimiter so
 * that it is the bottleneck, as a home uplink is. The region directory is
 * stood in for by a map from CID to the peers that announced it (the
 * directory's own behaviour is tested in workerd, test/edge/); the
 * end-to-end swarm over the real edge is bench:swarm's job.
 *
 * The same download without swarm views is measured as the control, so the
 * bound asserted for the swarm is one the protocol could fail.
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { generateIdentity } from "../../src/core/identity.js";
import { ArrivingChunks } from "../../src/peer/arriving-chunks.js";
import { ChunkStore } from "../../src/peer/chunk-store.js";
import { getLink } from "../../src/peer/download.js";
import { putPath } from "../../src/peer/ingest.js";
import type { ChunkSource, ProviderDirectory } from "../../src/peer/sources.js";
import { heldPieces, parseSwarmView, SwarmBoard } from "../../src/peer/swarm.js";
import { TransferClient } from "../../src/peer/transfer-client.js";
import { TransferServer } from "../../src/peer/transfer-server.js";
import { UploadLimiter } from "../../src/peer/upload-limiter.js";
import { certify, makeTestNetwork } from "./test-network.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const FILE_BYTES = 6 * MiB;
/** ~24 pieces: enough to trade, few enough to stay quick. */
const CHUNKER = { minChunkBytes: 128 * KiB, avgChunkBytes: 256 * KiB, maxChunkBytes: 512 * KiB };
const PUBLISHER_BYTES_PER_SECOND = 3 * MiB;
const DOWNLOADERS = 3;

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "peercloud-swarm-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Peer {
  id: string;
  url: string;
  store: ChunkStore;
  server: TransferServer;
  client: TransferClient;
  board: SwarmBoard;
  arrivals: ArrivingChunks;
}

async function makeNetwork(label: string, uploadLimited: string, serverOptions: { superSeedWindowMs?: number } = {}) {
  const network = await makeTestNetwork();
  const peers = new Map<string, Peer>();
  /** The directory stand-in: CID → peers that announced it. */
  const holders = new Map<string, Set<string>>();
  const announce = (id: string, cids: Iterable<string>) => {
    for (const cid of cids) {
      if (!holders.has(cid)) holders.set(cid, new Set());
      holders.get(cid)!.add(id);
    }
  };
  const addPeer = async (name: string): Promise<Peer> => {
    const identity = await generateIdentity();
    const store = await ChunkStore.open(join(root, label, name));
    const board = new SwarmBoard();
    const arrivals = new ArrivingChunks();
    const server = new TransferServer({
      store,
      networkPublicKey: network.publicKey,
      host: "127.0.0.1",
      swarm: board,
      arrivals,
      ...serverOptions,
      ...(name === uploadLimited ? { uploadLimiter: new UploadLimiter({ bytesPerSecond: PUBLISHER_BYTES_PER_SECOND }) } : {}),
    });
    const { url } = await server.listen();
    const client = new TransferClient({ secretKey: identity.secretKey, certificate: await certify(network, identity, ["service", "publisher"]) });
    const peer = { id: identity.nodeId, url, store, server, client, board, arrivals };
    peers.set(peer.id, peer);
    return peer;
  };
  const providersFor = (self: Peer): ProviderDirectory => ({
    async providers(cid) {
      const out: ChunkSource[] = [];
      for (const id of holders.get(cid) ?? []) {
        const holder = peers.get(id)!;
        if (id === self.id) continue;
        out.push({
          id,
          kind: "peer",
          fetch: (c, signal, _onFirstByte, options) => self.client.getChunk(holder.url, c, { signal, deferToSwarm: options?.deferToSwarm, onBody: options?.onBody }),
          swarmView: (key, since, signal) => self.client.swarmView(holder.url, key, since, { signal }),
        });
      }
      return out;
    },
  });
  const close = async () => {
    for (const peer of peers.values()) {
      peer.client.close();
      await peer.server.close();
      await peer.store.close();
    }
  };
  return { addPeer, providersFor, announce, close };
}

/** Publishes one random file, then has `DOWNLOADERS` peers get it at once; returns what the publisher sent. */
async function distribute(label: string, data: Uint8Array, swarm: boolean) {
  const net = await makeNetwork(label, "publisher");
  try {
    const publisher = await net.addPeer("publisher");
    const source = join(root, `${label}.bin`);
    await writeFile(source, data);
    const put = await putPath(source, { chunker: CHUNKER }, { store: publisher.store, convergenceSecret: new Uint8Array(32).fill(7) });
    net.announce(
      publisher.id,
      Array.from(publisher.store.list(), (c) => c.cid),
    );
    const downloaders = await Promise.all(Array.from({ length: DOWNLOADERS }, (_, i) => net.addPeer(`downloader-${i}`)));
    await mkdir(join(root, label, "out"), { recursive: true });
    const results = await Promise.all(
      downloaders.map((peer, i) =>
        getLink(
          put.link,
          { output: join(root, label, "out", `copy-${i}`) },
          {
            store: peer.store,
            providers: net.providersFor(peer),
            announcer: { announce: (cids) => net.announce(peer.id, cids) },
            // As the daemon wires it: views, and chunks relayed while they arrive.
            ...(swarm ? { swarmBoard: peer.board, arrivals: peer.arrivals } : {}),
          },
        ),
      ),
    );
    for (const [i, result] of results.entries()) {
      expect(Buffer.compare(await readFile(result.path), data), `copy ${i}`).toBe(0);
    }
    // F as the swarm moves it: every sealed object of the link (chunks and manifest), as the publisher stores them.
    const sealedBytes = publisher.store.stats().usedBytes;
    const fromPublisher = publisher.server.stats().bytesServed;
    const fromDownloaders = downloaders.reduce((sum, peer) => sum + peer.server.stats().bytesServed, 0);
    const relayed = downloaders.reduce((sum, peer) => sum + peer.server.stats().chunksRelayed, 0);
    return { sealedBytes, fromPublisher, fromDownloaders, relayed };
  } finally {
    await net.close();
  }
}

describe("swarm", () => {
  it("the publisher sends each piece about once when downloaders trade; without swarm views it sends every copy", async () => {
    const data = randomBytes(FILE_BYTES);
    const control = await distribute("control", data, false);
    const swarm = await distribute("swarm", data, true);
    const ratio = (bytes: number, r: { sealedBytes: number }) => (bytes / r.sealedBytes).toFixed(2);
    console.log(
      `[swarm] ${DOWNLOADERS} downloaders of ${FILE_BYTES / MiB} MiB: publisher sent ${ratio(swarm.fromPublisher, swarm)} × F with swarm views ` +
        `(downloaders sent ${ratio(swarm.fromDownloaders, swarm)} × F, ${swarm.relayed} of them relayed while arriving), ${ratio(control.fromPublisher, control)} × F without`,
    );
    // Without views, each downloader takes nearly everything from the publisher (the directory is asked once per piece).
    expect(control.fromPublisher).toBeGreaterThan(2 * control.sealedBytes);
    expect(swarm.fromPublisher).toBeLessThanOrEqual(1.5 * swarm.sealedBytes);
    expect(swarm.fromDownloaders).toBeGreaterThanOrEqual((DOWNLOADERS - 1.5) * swarm.sealedBytes);
    // Pieces take ~0.5 s to cross the publisher's capped uplink and views travel every 250 ms: downloaders pass
    // pieces on before they hold them whole (arriving-chunks.ts). Without relaying this stays 0.
    expect(swarm.relayed).toBeGreaterThan(0);
    expect(control.relayed).toBe(0);
  }, 120_000);
});

describe("super-seeding", () => {
  it("a downloader referred to a member that never passes the pieces on still finishes, from the seed once the referral ends", async () => {
    const net = await makeNetwork("ghost", "none", { superSeedWindowMs: 2_000 });
    try {
      const publisher = await net.addPeer("publisher");
      // ~16 pieces: the first requests may leave before the ghost's view arrives (no referral possible), the rest after.
      const data = randomBytes(4 * MiB);
      const source = join(root, "ghost.bin");
      await writeFile(source, data);
      const put = await putPath(source, { chunker: CHUNKER }, { store: publisher.store, convergenceSecret: new Uint8Array(32).fill(9) });
      const cids = Array.from(publisher.store.list(), (c) => c.cid);
      net.announce(publisher.id, cids);
      // The ghost: a member that says it is downloading the file (its view: a leecher holding nothing) and takes
      // every chunk from the seed as a swarm member, but never stores or lists any of them.
      const ghost = await net.addPeer("ghost");
      ghost.board.open(put.cid, put.chunks);
      net.announce(ghost.id, [put.cid]);
      for (const cid of cids) await ghost.client.getChunk(publisher.url, cid, { deferToSwarm: true });
      const downloader = await net.addPeer("downloader");
      const output = join(root, "ghost-copy.bin");
      const started = performance.now();
      const result = await getLink(
        put.link,
        { output },
        { store: downloader.store, providers: net.providersFor(downloader), announcer: { announce: (c) => net.announce(downloader.id, c) }, swarmBoard: downloader.board },
      );
      expect(Buffer.compare(await readFile(result.path), data)).toBe(0);
      // The seed referred it to the ghost at least once, and it waited rather than failed or fell back.
      expect(publisher.server.stats().errors.sent_to_swarm).toBeGreaterThan(0);
      expect(performance.now() - started).toBeLessThan(30_000);
    } finally {
      await net.close();
    }
  }, 60_000);
});

describe("swarm views", () => {
  it("list pieces only once held, as deltas after the first full bitmap, with what is in flight", () => {
    const board = new SwarmBoard();
    const progress = board.open("file", 10);
    progress.started(3);
    progress.started(4);
    progress.holds(4);
    progress.ended(4);
    const first = parseSwarmView(JSON.parse(JSON.stringify(board.view("file", 0))), 10)!;
    expect(first.bitmap).toBeDefined();
    expect(heldPieces(first)).toEqual([4]);
    expect(first.inFlight).toEqual([3]);
    expect(first.complete).toBe(false);
    progress.holds(3);
    progress.ended(3);
    progress.holds(3); // twice: listed once
    const next = parseSwarmView(board.view("file", first.seq), 10)!;
    expect(next.have).toEqual([3]);
    expect(next.inFlight).toEqual([]);
    // A cursor beyond the log (the member restarted): a full bitmap again.
    expect(board.view("file", 99)!.bitmap).toBeDefined();
    expect(board.view("other", 0)).toBeNull();
  });

  it("reject views about another file or with pieces out of range", () => {
    const good = { pieces: 4, seq: 1, have: [2], inFlight: [1], complete: false };
    expect(parseSwarmView(good, 4)).not.toBeNull();
    expect(parseSwarmView(good, 5)).toBeNull();
    expect(parseSwarmView({ ...good, have: [4] }, 4)).toBeNull();
    expect(parseSwarmView({ ...good, inFlight: [-1] }, 4)).toBeNull();
    expect(parseSwarmView({ ...good, bitmap: "AA" }, 4)).toBeNull(); // both forms
    expect(parseSwarmView({ ...good, have: undefined }, 4)).toBeNull(); // neither
    expect(parseSwarmView("nonsense", 4)).toBeNull();
  });

  it("a finished file stays visible after release, up to the board's limit", () => {
    const board = new SwarmBoard({ maxFinished: 1 });
    const a = board.open("a", 1);
    a.holds(0);
    board.release(a);
    expect(board.view("a", 0)!.complete).toBe(true);
    board.release(board.open("b", 1));
    expect(board.view("a", 0)).toBeNull();
    expect(board.view("b", 0)).not.toBeNull();
  });
});

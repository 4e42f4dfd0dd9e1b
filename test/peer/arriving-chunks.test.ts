/**
 * Cut-through relaying (src/peer/arriving-chunks.ts): a chunk a swarm
 * download is receiving is served to others while it arrives, its last byte
 * only once the whole chunk matched its CID, and a relay whose own fetch
 * failed cuts its streams instead of completing them.
 *
 * The registry's rules are checked on its streams directly; the wire is
 * checked with a real TransferServer on loopback, a real ChunkStore in a
 * temp directory and a real TransferClient.
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { generateIdentity } from "../../src/core/identity.js";
import { ArrivingChunks } from "../../src/peer/arriving-chunks.js";
import { ChunkStore } from "../../src/peer/chunk-store.js";
import { TransferClient, TransferError } from "../../src/peer/transfer-client.js";
import { TransferServer } from "../../src/peer/transfer-server.js";
import { makeChunk } from "./store-contract.js";
import { certify, makeTestNetwork } from "./test-network.js";

/** Collects a stream's bytes; `until(n)` resolves once n bytes came (the test's only way to wait: on data). */
function collect(stream: Readable) {
  const parts: Buffer[] = [];
  let bytes = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  stream.on("data", (piece: Buffer) => {
    parts.push(piece);
    bytes += piece.length;
    for (const w of waiters.splice(0)) {
      if (bytes >= w.n) w.resolve();
      else waiters.push(w);
    }
  });
  const ended = new Promise<Buffer>((resolve, reject) => {
    stream.on("end", () => resolve(Buffer.concat(parts)));
    stream.on("error", reject);
  });
  // Keep an unobserved rejection from failing the run before a test looks at it.
  ended.catch(() => {});
  return {
    get bytes() {
      return bytes;
    },
    until: (n: number) => (bytes >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }))),
    ended,
  };
}

describe("ArrivingChunks", () => {
  it("streams what arrived, then the rest as it arrives, and holds the last byte back until the chunk is verified", async () => {
    const arrivals = new ArrivingChunks();
    const body = new Uint8Array(randomBytes(100_000));
    const arrival = arrivals.begin("c1", body)!;
    arrival.advance(30_000);
    const early = collect(arrivals.open("c1")!.stream);
    await early.until(30_000);
    arrival.advance(100_000);
    expect(arrival.readableBytes()).toBe(99_999);
    await early.until(99_999);
    // A reader opened later starts from the first byte, and both stop one short of the end.
    const late = collect(arrivals.open("c1")!.stream);
    await late.until(99_999);
    expect([early.bytes, late.bytes]).toEqual([99_999, 99_999]);
    arrival.verified();
    expect(Buffer.compare(await early.ended, body)).toBe(0);
    expect(Buffer.compare(await late.ended, body)).toBe(0);
  });

  it("cuts every stream when the fetch fails, and stops offering the chunk", async () => {
    const arrivals = new ArrivingChunks();
    const arrival = arrivals.begin("c1", new Uint8Array(1000))!;
    arrival.advance(1000);
    const reader = collect(arrivals.open("c1")!.stream);
    await reader.until(999);
    arrival.fail(new Error("upstream sent bytes that do not match the CID"));
    await expect(reader.ended).rejects.toThrow(/do not match/);
    expect(arrivals.open("c1")).toBeNull();
    // Later steps of a failed arrival change nothing.
    arrival.verified();
    expect(arrivals.has("c1")).toBe(false);
  });

  it("offers one fetch per chunk; ending the offer lets open streams finish", async () => {
    const arrivals = new ArrivingChunks();
    const body = new Uint8Array(randomBytes(5000));
    const first = arrivals.begin("c1", body)!;
    expect(arrivals.begin("c1", new Uint8Array(5000))).toBeNull();
    const reader = collect(arrivals.open("c1")!.stream);
    first.end();
    expect(arrivals.open("c1")).toBeNull();
    first.advance(5000);
    first.verified();
    expect(Buffer.compare(await reader.ended, body)).toBe(0);
    // Once withdrawn, the next fetch of the chunk may be offered.
    expect(arrivals.begin("c1", body)).not.toBeNull();
    expect(arrivals.size).toBe(1);
  });
});

describe("RelayTap (a fetch's side)", () => {
  it("offers the chunk at its first bytes, tells the view once each way, and leaves a chunk another fetch offers to that one", () => {
    const arrivals = new ArrivingChunks();
    const events: string[] = [];
    const hooks = (name: string) => ({ offered: () => events.push(`${name} offered`), withdrawn: () => events.push(`${name} withdrawn`) });
    const first = arrivals.tap("c1", hooks("first"));
    const second = arrivals.tap("c1", hooks("second"));
    expect(arrivals.has("c1")).toBe(false);
    const body = new Uint8Array(100);
    first.onBody(body, 10);
    second.onBody(new Uint8Array(100), 20);
    first.onBody(body, 50);
    expect(events).toEqual(["first offered"]);
    expect(arrivals.has("c1")).toBe(true);
    second.withdraw();
    expect(arrivals.has("c1")).toBe(true);
    first.withdraw(new Error("cancelled"));
    first.withdraw();
    expect(events).toEqual(["first offered", "first withdrawn"]);
    expect(arrivals.open("c1")).toBeNull();
    // Bytes after the withdrawal (a socket's last data event) offer nothing again.
    first.onBody(body, 100);
    expect(arrivals.has("c1")).toBe(false);
  });

  it("cuts a relayed stream when withdrawn with a reason, and lets it finish once verified otherwise", async () => {
    const arrivals = new ArrivingChunks();
    const hooks = { offered: () => {}, withdrawn: () => {} };
    const body = new Uint8Array(randomBytes(4000));
    const good = arrivals.tap("good", hooks);
    good.onBody(body, 4000);
    const goodReader = collect(arrivals.open("good")!.stream);
    good.verified();
    good.withdraw();
    expect(Buffer.compare(await goodReader.ended, body)).toBe(0);
    const bad = arrivals.tap("bad", hooks);
    bad.onBody(new Uint8Array(4000), 4000);
    const badReader = collect(arrivals.open("bad")!.stream);
    await badReader.until(3999);
    bad.withdraw(new Error("bytes do not match the CID"));
    await expect(badReader.ended).rejects.toThrow(/do not match/);
  });
});

describe("relayed over the wire (GET /v1/chunks/:cid)", () => {
  let dir: string;
  let store: ChunkStore;
  let server: TransferServer;
  let url: string;
  let client: TransferClient;
  const arrivals = new ArrivingChunks();

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "peercloud-relay-"));
    const network = await makeTestNetwork();
    store = await ChunkStore.open(join(dir, "store"));
    server = new TransferServer({ store, networkPublicKey: network.publicKey, host: "127.0.0.1", port: 0, arrivals });
    url = (await server.listen()).url;
    const identity = await generateIdentity();
    const certificate = await certify(network, identity, ["service"]);
    client = new TransferClient({ secretKey: identity.secretKey, certificate });
  });

  afterEach(async () => {
    client.close();
    await server.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A get whose body progress the test can wait on. */
  function relayedGet(cid: string) {
    let received = 0;
    const waiters: { n: number; resolve: () => void }[] = [];
    let settled = false;
    const result = client
      .getChunk(url, cid, {
        onBody: (_body, n) => {
          received = n;
          for (const w of waiters.splice(0)) (n >= w.n ? w.resolve : () => waiters.push(w))();
        },
      })
      .finally(() => (settled = true));
    result.catch(() => {});
    return {
      result,
      get settled() {
        return settled;
      },
      until: (n: number) => (received >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }))),
    };
  }

  it("serves a chunk while it arrives, completes it only once verified, and counts it as relayed", async () => {
    const chunk = makeChunk("relayed", 3 * 1024 * 1024 + 17);
    const arrival = arrivals.begin(chunk.cid, chunk.bytes)!;
    arrival.advance(1024 * 1024);
    // The server counts a response once its stream settled, which may be just after the client has every byte.
    const served = once(server, "served");
    const get = relayedGet(chunk.cid);
    await get.until(1024 * 1024);
    arrival.advance(chunk.bytes.length);
    await get.until(chunk.bytes.length - 1);
    expect(get.settled).toBe(false);
    arrival.verified();
    expect(Buffer.compare(await get.result, chunk.bytes)).toBe(0);
    await served;
    arrival.end();
    expect(server.stats()).toMatchObject({ chunksServed: 1, chunksRelayed: 1, bytesServed: chunk.bytes.length });
    // Withdrawn and not stored: not here.
    const gone = await client.getChunk(url, chunk.cid).catch((error: unknown) => error);
    expect(gone).toBeInstanceOf(TransferError);
    expect((gone as TransferError).code).toBe("chunk_not_found");
  });

  it("cuts the response when the relay's own fetch fails: the recipient gets an error, never a complete chunk", async () => {
    const chunk = makeChunk("cut", 2 * 1024 * 1024);
    const arrival = arrivals.begin(chunk.cid, chunk.bytes)!;
    arrival.advance(chunk.bytes.length);
    const get = relayedGet(chunk.cid);
    await get.until(chunk.bytes.length - 1);
    arrival.fail(new Error("wrong bytes upstream"));
    const error = await get.result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransferError);
    expect((error as TransferError).code).toBe("transfer_failed");
    expect(server.stats().chunksServed).toBe(0);
    // The server goes on serving: the stored copy of another chunk comes whole.
    const other = makeChunk("other", 4096);
    await store.put(other.cid, other.bytes);
    expect(Buffer.compare(await client.getChunk(url, other.cid), other.bytes)).toBe(0);
  });

  it("prefers the stored copy once the store holds the chunk", async () => {
    const chunk = makeChunk("stored", 200_000);
    const arrival = arrivals.begin(chunk.cid, new Uint8Array(chunk.bytes.length))!;
    await store.put(chunk.cid, chunk.bytes);
    const served = once(server, "served");
    expect(Buffer.compare(await client.getChunk(url, chunk.cid), chunk.bytes)).toBe(0);
    await served;
    expect(server.stats()).toMatchObject({ chunksServed: 1, chunksRelayed: 0 });
    arrival.end();
  });
});

/**
 * The seal pool (src/peer/seal-pool.ts) against the in-thread sealing it
 * replaces: the same bytes, keys, CIDs and plaintext hashes for every input
 * shape, errors that surface instead of hanging, and the in-thread fallback
 * when workers cannot start. Real worker threads running the real
 * seal-worker.ts through tsx, as ingest runs them.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseCid } from "../../src/core/cid.js";
import type { ChunkKeying } from "../../src/core/chunk-cipher.js";
import { sealChunkNative } from "../../src/peer/native-chunk-cipher.js";
import { shardOf } from "../../src/peer/pending-files.js";
import { defaultEncryptInto, encryptIntoWithNodeCrypto, sealChunkInto } from "../../src/peer/seal-into.js";
import { acquireSealPool, SealPool, SealWorkerError } from "../../src/peer/seal-pool.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const CRASHING = new URL("./fixtures/crashing-seal-worker.ts", import.meta.url);
const BROKEN = new URL("./fixtures/broken-seal-worker.ts", import.meta.url);

const pools: SealPool[] = [];
afterEach(async () => {
  for (const pool of pools.splice(0)) await pool.close();
});

async function startedPool(options: ConstructorParameters<typeof SealPool>[0] = {}): Promise<SealPool> {
  const pool = new SealPool(options);
  pools.push(pool);
  await pool.whenStarted();
  return pool;
}

const convergent: ChunkKeying = { mode: "convergent", convergenceSecret: new Uint8Array(32).fill(7) };
const privateKeying = (chunkIndex: number): ChunkKeying => ({ mode: "private", fileKey: new Uint8Array(32).fill(3), chunkIndex });

function expectSameSeal(actual: Awaited<ReturnType<SealPool["seal"]>>, expected: ReturnType<typeof sealChunkNative>): void {
  expect(actual.cid).toBe(expected.cid);
  expect(Buffer.compare(actual.sealed, expected.sealed)).toBe(0);
  expect(Buffer.compare(actual.key, expected.key)).toBe(0);
  if (expected.plaintextSha256) expect(Buffer.compare(actual.plaintextSha256!, expected.plaintextSha256)).toBe(0);
  else expect(actual.plaintextSha256).toBeUndefined();
}

/** `bytes` copied into a SharedArrayBuffer at an odd offset, as ingest's slabs hold chunks. */
function shared(bytes: Uint8Array, extra = 0): Uint8Array {
  const view = new Uint8Array(new SharedArrayBuffer(bytes.length + extra + 3), 3, bytes.length + extra);
  view.set(bytes);
  return view;
}

/** sealInto's result and output against sealChunkNative's. */
function expectSameSealInto(result: Awaited<ReturnType<SealPool["sealInto"]>>, output: Uint8Array, expected: ReturnType<typeof sealChunkNative>): void {
  expect(result.sealedBytes).toBe(expected.sealed.length);
  expectSameSeal({ ...result, sealed: output.subarray(0, result.sealedBytes) }, expected);
}

describe("SealPool", () => {
  it("seals on its workers exactly as in-thread sealing does, for every size and both keyings", async () => {
    const pool = await startedPool({ size: 2 });
    expect(pool.stats()).toMatchObject({ workers: 2, ready: 2, failedToStart: 0 });
    const sizes = [0, 1, 15, 16, 17, 4 * KiB - 1, 4 * KiB, 64 * KiB + 3, 1 * MiB, 4 * MiB];
    let index = 0;
    for (const sizeBytes of sizes) {
      for (const keying of [convergent, privateKeying(index++)]) {
        const plaintext = new Uint8Array(randomBytes(sizeBytes));
        const expected = sealChunkNative(plaintext, keying);
        expectSameSeal(await pool.seal(new Uint8Array(plaintext), keying), expected);
      }
    }
    expect(pool.stats()).toMatchObject({ sealedInWorkers: sizes.length * 2, sealedInThread: 0 });
  });

  it("copies by default, leaving the caller's bytes intact, and takes the buffer when asked to transfer it", async () => {
    const pool = await startedPool({ size: 1 });
    const big = new Uint8Array(randomBytes(300 * KiB));
    const before = Buffer.from(big);
    const view = big.subarray(1000, 1000 + 200 * KiB);
    expectSameSeal(await pool.seal(view, convergent), sealChunkNative(view, convergent));
    expect(Buffer.compare(big, before)).toBe(0);
    // Node Buffers from the shared 8 KiB pool are views too: copied, never transferred.
    const pooled = Buffer.from("small chunk from the Buffer pool");
    expectSameSeal(await pool.seal(pooled, convergent), sealChunkNative(Buffer.from("small chunk from the Buffer pool"), convergent));
    expect(pooled.toString()).toBe("small chunk from the Buffer pool");

    // Transferred, exactly the plaintext's size: sealed with sealChunkNative in the worker.
    const exact = new Uint8Array(randomBytes(100 * KiB));
    const expectedExact = sealChunkNative(exact, privateKeying(1));
    const sealingExact = pool.seal(exact, privateKeying(1), { transfer: true });
    expect(exact.byteLength).toBe(0); // handed over, not copied
    expectSameSeal(await sealingExact, expectedExact);
    // Transferred with room to spare: sealed in place.
    const roomy = new Uint8Array(64 * KiB + 100);
    roomy.set(randomBytes(64 * KiB));
    const expectedRoomy = sealChunkNative(roomy.subarray(0, 64 * KiB), convergent);
    expectSameSeal(await pool.seal(roomy.subarray(0, 64 * KiB), convergent, { transfer: true }), expectedRoomy);
    await expect(pool.seal(big.subarray(1), convergent, { transfer: true })).rejects.toBeInstanceOf(RangeError);
    expect(pool.stats()).toMatchObject({ sealedInWorkers: 4, sealedInThread: 0 });
  });

  it("keeps order-independent results under many concurrent seals", async () => {
    const pool = await startedPool({ size: 2 });
    const plaintexts = Array.from({ length: 40 }, (_, i) => new Uint8Array(randomBytes(1 + i * 3001)));
    const expected = plaintexts.map((p, i) => sealChunkNative(p, privateKeying(i)));
    const results = await Promise.all(plaintexts.map((p, i) => pool.seal(new Uint8Array(p), privateKeying(i))));
    results.forEach((r, i) => expectSameSeal(r, expected[i]));
  });

  it("rejects bad input with the same kind of error as in-thread sealing, and stays usable", async () => {
    const pool = await startedPool({ size: 1 });
    const shortSecret: ChunkKeying = { mode: "convergent", convergenceSecret: new Uint8Array(4) };
    let inThread: unknown;
    try {
      sealChunkNative(new Uint8Array(10), shortSecret);
    } catch (error) {
      inThread = error;
    }
    const fromPool = await pool.seal(new Uint8Array(10), shortSecret).catch((error: unknown) => error);
    expect(fromPool).toBeInstanceOf((inThread as Error).constructor);
    expect((fromPool as Error).message).toBe((inThread as Error).message);
    expectSameSeal(await pool.seal(new Uint8Array(10), convergent), sealChunkNative(new Uint8Array(10), convergent));
  });

  it("turns a worker that dies mid-chunk into a SealWorkerError for that chunk and every later one, not a hang", async () => {
    const pool = await startedPool({ size: 1, workerModule: CRASHING });
    expect(pool.stats().ready).toBe(1);
    const error = await pool.seal(new Uint8Array(1000), convergent).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SealWorkerError);
    expect(error).toMatchObject({ code: "seal_worker_failed" });
    expect((error as Error).message).toMatch(/exited with code 3/);
    expect(pool.isBroken).toBe(true);
    await expect(pool.seal(new Uint8Array(10), convergent)).rejects.toBeInstanceOf(SealWorkerError);
  });

  it("seals in the calling thread, with the same output, when no worker can start", async () => {
    const pool = await startedPool({ size: 2, workerModule: BROKEN });
    expect(await pool.whenStarted()).toBe(0);
    expect(pool.stats()).toMatchObject({ ready: 0, failedToStart: 2 });
    const plaintext = new Uint8Array(randomBytes(50 * KiB));
    expectSameSeal(await pool.seal(plaintext, convergent), sealChunkNative(plaintext, convergent));
    expect(pool.stats()).toMatchObject({ sealedInWorkers: 0, sealedInThread: 1 });
  });

  it("rejects chunks still in a worker when closed", async () => {
    const pool = new SealPool({ size: 1 });
    await pool.whenStarted();
    const pending = pool.seal(new Uint8Array(4 * MiB), convergent);
    await pool.close();
    // Either it finished before the close or it was cut off: never left pending.
    const outcome = await pending.then(
      () => "sealed",
      (e: unknown) => (e instanceof SealWorkerError ? "rejected" : e),
    );
    expect(["sealed", "rejected"]).toContain(outcome);
    await expect(pool.seal(new Uint8Array(1), convergent)).rejects.toBeInstanceOf(SealWorkerError);
  });

  it("seals shared memory into shared memory exactly as sealChunkNative does, on workers and in-thread", async () => {
    const pool = await startedPool({ size: 2 });
    const noWorkers = await startedPool({ size: 1, workerModule: BROKEN });
    const sizes = [0, 1, 16, 16 * KiB - 1, 16 * KiB, 16 * KiB + 1, 100 * KiB + 7, 1 * MiB, 4 * MiB];
    let index = 0;
    for (const sizeBytes of sizes) {
      for (const keying of [convergent, privateKeying(index++)]) {
        const plaintext = new Uint8Array(randomBytes(sizeBytes));
        const expected = sealChunkNative(plaintext, keying);
        for (const p of [pool, noWorkers]) {
          const input = shared(plaintext);
          const output = shared(new Uint8Array(0), sizeBytes + 16 + 5);
          expectSameSealInto(await p.sealInto(input, output, keying), output, expected);
          expect(Buffer.compare(input, plaintext)).toBe(0); // the plaintext is read, never written
        }
        const output = new Uint8Array(sizeBytes + 16);
        expectSameSealInto(sealChunkInto(plaintext, output, keying), output, expected);
      }
    }
    expect(pool.stats()).toMatchObject({ sealedInWorkers: sizes.length * 2, sealedInThread: 0 });
    expect(noWorkers.stats()).toMatchObject({ sealedInWorkers: 0, sealedInThread: sizes.length * 2 });
  });

  it("sealChunkInto seals in place (output starting at the plaintext) exactly as sealChunkNative does, with either encryption, and refuses any other overlap", () => {
    for (const sizeBytes of [0, 15, 16 * KiB + 1, 100 * KiB + 7]) {
      for (const keying of [convergent, privateKeying(sizeBytes)]) {
        const plaintext = new Uint8Array(randomBytes(sizeBytes));
        const expected = sealChunkNative(plaintext, keying);
        for (const encryptInto of [defaultEncryptInto, encryptIntoWithNodeCrypto]) {
          const bytes = shared(plaintext, 16);
          expectSameSealInto(sealChunkInto(bytes.subarray(0, sizeBytes), bytes, keying, encryptInto), bytes, expected);
        }
      }
    }
    const bytes = shared(new Uint8Array(randomBytes(1000)), 32);
    const before = Buffer.from(bytes);
    expect(() => sealChunkInto(bytes.subarray(0, 1000), bytes.subarray(8), convergent)).toThrow(/overlaps the plaintext/);
    expect(() => sealChunkInto(bytes.subarray(16, 1016), bytes, convergent)).toThrow(/overlaps the plaintext/);
    expect(Buffer.compare(bytes, before)).toBe(0); // refused before anything was written
  });

  it("with a spool directory, writes each chunk a worker sealed to a temp file in its shard directory (and none when sealing in-thread)", async () => {
    const pool = await startedPool({ size: 2 });
    const noWorkers = await startedPool({ size: 1, workerModule: BROKEN });
    const spoolDir = await mkdtemp(join(tmpdir(), "peercloud-seal-spool-"));
    try {
      for (const sizeBytes of [0, 1000, 300 * KiB + 5]) {
        const plaintext = new Uint8Array(randomBytes(sizeBytes));
        const expected = sealChunkNative(plaintext, convergent);
        const output = shared(new Uint8Array(0), sizeBytes + 16);
        const result = await pool.sealInto(shared(plaintext), output, convergent, { spoolDir });
        expectSameSealInto(result, output, expected);
        const path = (result.spool as { spooled: string }).spooled;
        expect(dirname(path)).toBe(join(spoolDir, shardOf(parseCid(expected.cid).digest)));
        expect(Buffer.compare(await readFile(path), expected.sealed)).toBe(0);
      }
      const inThread = await noWorkers.sealInto(shared(new Uint8Array(10)), shared(new Uint8Array(26)), convergent, { spoolDir });
      expect(inThread.spool).toBeUndefined();
    } finally {
      await rm(spoolDir, { recursive: true, force: true });
    }
  });

  it("refuses sealInto with memory a worker cannot share, too little output room, or overlapping output", async () => {
    const pool = await startedPool({ size: 1 });
    await expect(pool.sealInto(new Uint8Array(10), shared(new Uint8Array(26)), convergent)).rejects.toBeInstanceOf(RangeError);
    await expect(pool.sealInto(shared(new Uint8Array(10)), new Uint8Array(26), convergent)).rejects.toBeInstanceOf(RangeError);
    await expect(pool.sealInto(shared(new Uint8Array(10)), shared(new Uint8Array(25)), convergent)).rejects.toThrow(/cannot hold/);
    const both = shared(new Uint8Array(100));
    await expect(pool.sealInto(both.subarray(0, 40), both.subarray(30, 100), convergent)).rejects.toThrow(/overlaps/);
    // Still usable after refusals.
    const plaintext = new Uint8Array(randomBytes(1000));
    const output = shared(new Uint8Array(1016));
    expectSameSealInto(await pool.sealInto(shared(plaintext), output, convergent), output, sealChunkNative(plaintext, convergent));
  });

  it("shares one pool per process while it is in use", async () => {
    const a = acquireSealPool();
    const b = acquireSealPool();
    try {
      expect(a.pool).toBe(b.pool);
      await a.pool.whenStarted();
      expectSameSeal(await b.pool.seal(new Uint8Array(100), convergent), sealChunkNative(new Uint8Array(100), convergent));
    } finally {
      a.release();
      b.release();
    }
  });
});

describe("SealPool.openFileHash", () => {
  // Sizes around SHA-256's 64-byte block, so that pieces end mid-block.
  const pieces = [0, 1, 63, 64, 65, 4 * KiB + 3, 1 * MiB + 5].map((n) => new Uint8Array(randomBytes(n)));
  const sha256Of = (parts: Uint8Array[]) => {
    const hash = createHash("sha256");
    for (const part of parts) hash.update(part);
    return hash.digest("hex");
  };
  const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

  it("hashes on a worker of its own, in order, to the SHA-256 of the bytes given, keeping streams apart", async () => {
    const pool = await startedPool({ size: 1 });
    expect(pool.stats()).toMatchObject({ ready: 1, fileHashReady: true });
    const forward = pool.openFileHash();
    const backward = pool.openFileHash();
    // Interleaved, none awaited before the next is given: the worker keeps each stream's order.
    await Promise.all(pieces.flatMap((piece, i) => [forward.update(shared(piece)), backward.update(pieces[pieces.length - 1 - i])]));
    expect(hex(await forward.digest())).toBe(sha256Of(pieces));
    expect(hex(await backward.digest())).toBe(sha256Of([...pieces].reverse()));
    expect(pool.stats().sealedInWorkers).toBe(0); // hashing is not sealing
    await expect(forward.update(new Uint8Array(1))).rejects.toThrow(/ended/);
    await expect(forward.digest()).rejects.toThrow(/ended/);
    const discarded = pool.openFileHash();
    await discarded.update(pieces[3]);
    discarded.discard();
    await expect(discarded.digest()).rejects.toThrow(/ended/);
    // The worker serves on after a discard.
    const empty = pool.openFileHash();
    expect(hex(await empty.digest())).toBe(sha256Of([]));
  });

  it("hashes in the calling thread, to the same digest, when its worker cannot start or is not wanted", async () => {
    const broken = await startedPool({ size: 1, workerModule: BROKEN });
    const without = await startedPool({ size: 1, fileHashWorker: false });
    for (const pool of [broken, without]) {
      expect(pool.stats().fileHashReady).toBe(false);
      const stream = pool.openFileHash();
      for (const piece of pieces) await stream.update(piece);
      expect(hex(await stream.digest())).toBe(sha256Of(pieces));
      await expect(stream.update(new Uint8Array(1))).rejects.toThrow(/ended/);
    }
    await expect(without.openFileHash().update("text" as unknown as Uint8Array)).rejects.toBeInstanceOf(TypeError);
  });

  it("turns its worker dying into a SealWorkerError for the stream and breaks the pool, not a hang", async () => {
    const pool = await startedPool({ size: 1, workerModule: CRASHING });
    expect(pool.stats().fileHashReady).toBe(true);
    const stream = pool.openFileHash();
    const error = await stream.update(pieces[2]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SealWorkerError);
    expect((error as Error).message).toMatch(/file-hash worker exited with code 3/);
    expect(pool.isBroken).toBe(true);
    await expect(stream.digest()).rejects.toBeInstanceOf(SealWorkerError);
    await expect(pool.seal(new Uint8Array(10), convergent)).rejects.toBeInstanceOf(SealWorkerError);
  });
});

/**
 * The seal addon (src/peer/seal-addon.cc) against node:crypto and noble:
 * the same sealed bytes, keys and CIDs for every size around its 64 KiB
 * pieces and the GCM block, over ArrayBuffer and SharedArrayBuffer views at
 * odd offsets; and bad arguments refused with a clear error before anything
 * is written. Runs the real addon built by `npm ci`; where it is not built
 * these tests skip with the reason, except under
 * PEERCLOUD_REQUIRE_SEAL_ADDON=1 (CI), where that is a failure.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CHUNK_TAG_BYTES, nobleChunkCipher, type ChunkKeying } from "../../src/core/chunk-cipher.js";
import { sealChunkNative } from "../../src/peer/native-chunk-cipher.js";
import { sealAddon, sealAddonAbsence } from "../../src/peer/seal-addon.js";
import { defaultEncryptInto, encryptIntoWithNodeCrypto, sealChunkInto } from "../../src/peer/seal-into.js";

const KiB = 1024;
const required = process.env.PEERCLOUD_REQUIRE_SEAL_ADDON === "1";
if (!sealAddon && !required) console.log(`skipped: seal addon tests: the addon is ${sealAddonAbsence}`);

const convergent: ChunkKeying = { mode: "convergent", convergenceSecret: randomBytes(32) };
const privateKeying = (chunkIndex: number): ChunkKeying => ({ mode: "private", fileKey: randomBytes(32), chunkIndex });
const SIZES = [0, 1, 15, 16, 17, 64 * KiB - 1, 64 * KiB, 64 * KiB + 1, 200 * KiB + 5, 1024 * KiB + 3];

/** A view at an odd offset inside a larger buffer, shared or not, as ingest's slabs and rings are. */
function view(length: number, sharedMemory: boolean): Uint8Array {
  const buffer = sharedMemory ? new SharedArrayBuffer(length + 11) : new ArrayBuffer(length + 11);
  return new Uint8Array(buffer, 5, length);
}

describe("seal addon", () => {
  it("is what sealChunkInto runs when it loaded, node:crypto otherwise, and loaded wherever the install requires it", () => {
    if (required) expect(sealAddonAbsence, "PEERCLOUD_REQUIRE_SEAL_ADDON=1 but the addon did not load").toBeUndefined();
    expect(sealAddon === undefined).toBe(sealAddonAbsence !== undefined);
    expect(defaultEncryptInto).toBe(sealAddon ? sealAddon.sealInto : encryptIntoWithNodeCrypto);
  });

  describe.skipIf(!sealAddon)("with the addon built", () => {
    const addon = sealAddon!;

    it.each(SIZES)("seals %i bytes exactly as node:crypto does, for both keyings and both kinds of memory", (size) => {
      for (const keying of [convergent, privateKeying(size)]) {
        for (const sharedMemory of [false, true]) {
          const plaintext = view(size, sharedMemory);
          plaintext.set(randomBytes(size));
          const expected = sealChunkNative(plaintext, keying);
          const output = view(size + CHUNK_TAG_BYTES + 7, sharedMemory).fill(0xee);
          const result = sealChunkInto(plaintext, output, keying, addon.sealInto);
          expect(result.cid).toBe(expected.cid);
          expect(Buffer.compare(result.key, expected.key)).toBe(0);
          expect(Buffer.compare(output.subarray(0, result.sealedBytes), expected.sealed)).toBe(0);
          // Nothing past the sealed bytes is touched.
          expect(output.subarray(result.sealedBytes).every((byte) => byte === 0xee)).toBe(true);
          const viaNodeCrypto = view(size + CHUNK_TAG_BYTES, sharedMemory);
          expect(sealChunkInto(plaintext, viaNodeCrypto, keying, encryptIntoWithNodeCrypto).cid).toBe(expected.cid);
        }
      }
    });

    it("produces what noble, the portable reference, opens", async () => {
      const plaintext = randomBytes(70 * KiB + 9);
      const output = new Uint8Array(plaintext.length + CHUNK_TAG_BYTES);
      const { key } = sealChunkInto(plaintext, output, convergent, addon.sealInto);
      expect(Buffer.compare(await nobleChunkCipher.open(key, output), plaintext)).toBe(0);
    });

    it("refuses bad arguments with a clear error and writes nothing", () => {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const plaintext = randomBytes(100);
      const output = new Uint8Array(plaintext.length + CHUNK_TAG_BYTES).fill(0xee);
      const cases: [unknown[], RegExp][] = [
        [[key.subarray(0, 31), nonce, plaintext, output], /key: expected 32 bytes/],
        [[key, nonce.subarray(0, 11), plaintext, output], /nonce: expected 12 bytes/],
        [[key, nonce, plaintext, output.subarray(0, plaintext.length + CHUNK_TAG_BYTES - 1)], /output: too small/],
        [[key, nonce, "plaintext", output], /plaintext: expected a Uint8Array/],
        [[key, nonce, new Uint16Array(50), output], /plaintext: expected a Uint8Array/],
        [[key, nonce, plaintext, new DataView(output.buffer)], /output: expected a Uint8Array/],
        [[key, nonce, plaintext], /expected 4 arguments/],
      ];
      const sealInto = addon.sealInto as (...args: unknown[]) => Uint8Array;
      for (const [args, message] of cases) expect(() => sealInto(...args)).toThrow(message);
      expect(output.every((byte) => byte === 0xee)).toBe(true);
    });
  });
});

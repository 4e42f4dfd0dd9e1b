/**
 * The portable chunk AEAD: AES-256-GCM known answers from the GCM spec
 * (test/vectors/aes-256-gcm.json), the peercloud chunk format vectors from an
 * independent implementation (test/vectors/chunk-format.json), noble against
 * WebCrypto on many sizes, and every way to fail authentication.
 * (node:crypto joins the cross-test in test/peer/native-chunk-cipher.test.ts.)
 */
import { gcm } from "@noble/ciphers/aes.js";
import { describe, expect, it } from "vitest";
import { fromHex, randomBytes, toHex, utf8 } from "../../src/core/bytes.js";
import {
  CHUNK_TAG_BYTES,
  ChunkAuthError,
  chunkKeyFor,
  chunkNonce,
  convergentChunkKey,
  encryptChunk,
  nobleChunkCipher,
  openChunkSync,
  privateChunkInfo,
  privateChunkKey,
  sealChunkSync,
  sealedSizeBytes,
  webCryptoChunkCipher,
  type ChunkCipher,
} from "../../src/core/chunk-cipher.js";
import { PeercloudError } from "../../src/core/errors.js";
import gcmVectors from "../vectors/aes-256-gcm.json";
import format from "../vectors/chunk-format.json";

const SIZES = [0, 1, 15, 16, 17, 31, 32, 33, 255, 256, 4095, 4096, 4097, 65_536, 100_003, 1024 * 1024];
const ciphers: ChunkCipher[] = [nobleChunkCipher, webCryptoChunkCipher];
const secret = utf8(format.convergenceSecretUtf8);
const fileKey = fromHex(format.fileKey);

type Bytes = Uint8Array<ArrayBuffer>;

async function webCryptoGcm(key: Bytes, iv: Bytes, aad: Bytes, plaintext: Bytes): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
  return new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad, tagLength: 128 }, k, plaintext));
}

describe("AES-256-GCM known answers (McGrew–Viega test cases 13–16)", () => {
  for (const v of gcmVectors.cases) {
    it(v.name, async () => {
      const [key, iv, aad, pt] = [v.key, v.iv, v.aad, v.plaintext].map((hex) => fromHex(hex) as Bytes);
      const expected = v.ciphertext + v.tag;
      expect(toHex(gcm(key, iv, aad).encrypt(pt))).toBe(expected);
      expect(toHex(gcm(key, iv, aad).decrypt(fromHex(expected)))).toBe(v.plaintext);
      expect(toHex(await webCryptoGcm(key, iv, aad, pt))).toBe(expected);
    });
  }
});

describe("chunk format vectors (independent implementation)", () => {
  it("derives nonces and convergent keys", () => {
    for (const v of format.convergent) {
      expect(toHex(convergentChunkKey(secret, fromHex(v.plaintextSha256)))).toBe(v.key);
      expect(toHex(chunkNonce(fromHex(v.key)))).toBe(v.nonce);
    }
  });

  it("derives private chunk keys with HKDF over a u64 index", () => {
    for (const v of format.private) {
      expect(toHex(privateChunkKey(fileKey, v.chunkIndex))).toBe(v.key);
      expect(toHex(chunkNonce(fromHex(v.key)))).toBe(v.nonce);
    }
    expect(toHex(privateChunkInfo(2 ** 32 + 5))).toBe(toHex(utf8("peercloud/v1/chunk")) + "0000000100000005");
  });

  for (const cipher of ciphers) {
    it(`${cipher.name}: seals, names and opens every vector`, async () => {
      for (const v of format.convergent) {
        const sealed = await encryptChunk(cipher, fromHex(v.plaintext), { mode: "convergent", convergenceSecret: secret });
        expect(toHex(sealed.key)).toBe(v.key);
        expect(toHex(sealed.plaintextSha256!)).toBe(v.plaintextSha256);
        expect(toHex(sealed.sealed)).toBe(v.sealed);
        expect(sealed.cid).toBe(v.cid);
        expect(toHex(await cipher.open(fromHex(v.key), fromHex(v.sealed)))).toBe(v.plaintext);
      }
      for (const v of format.private) {
        const sealed = await encryptChunk(cipher, fromHex(v.plaintext), { mode: "private", fileKey, chunkIndex: v.chunkIndex });
        expect(toHex(sealed.key)).toBe(v.key);
        expect(toHex(sealed.sealed)).toBe(v.sealed);
        expect(sealed.cid).toBe(v.cid);
        expect(sealed.plaintextSha256).toBeUndefined(); // private keys need no plaintext hash
      }
    });
  }
});

describe("noble and WebCrypto agree byte for byte", () => {
  it("on random inputs of many sizes", async () => {
    for (const size of SIZES) {
      const key = randomBytes(32);
      const plaintext = randomBytes(size);
      const sealed = sealChunkSync(key, plaintext);
      expect(sealed.length).toBe(sealedSizeBytes(size));
      expect(toHex(await webCryptoChunkCipher.seal(key, plaintext))).toBe(toHex(sealed));
      expect(toHex(await webCryptoChunkCipher.open(key, sealed))).toBe(toHex(plaintext));
      expect(toHex(openChunkSync(key, sealed))).toBe(toHex(plaintext));
      expect(toHex(await webCryptoChunkCipher.sha256(plaintext))).toBe(toHex(await nobleChunkCipher.sha256(plaintext)));
    }
  });

  it("accepts views with any offset", async () => {
    const backing = randomBytes(1000);
    const key = randomBytes(32);
    const view = backing.subarray(3, 500);
    expect(toHex(await webCryptoChunkCipher.seal(key, view))).toBe(toHex(sealChunkSync(key, view.slice())));
  });
});

describe("keys", () => {
  it("convergent: identical plaintexts seal identically, other secrets or plaintexts do not", async () => {
    const plaintext = randomBytes(5000);
    const a = await encryptChunk(webCryptoChunkCipher, plaintext, { mode: "convergent", convergenceSecret: secret });
    const b = await encryptChunk(webCryptoChunkCipher, plaintext.slice(), { mode: "convergent", convergenceSecret: secret });
    const c = await encryptChunk(webCryptoChunkCipher, plaintext, { mode: "convergent", convergenceSecret: randomBytes(32) });
    const changed = plaintext.slice();
    changed[0] ^= 1;
    const d = await encryptChunk(webCryptoChunkCipher, changed, { mode: "convergent", convergenceSecret: secret });
    expect(b.cid).toBe(a.cid);
    expect(c.cid).not.toBe(a.cid);
    expect(d.cid).not.toBe(a.cid);
    expect(toHex(d.key)).not.toBe(toHex(a.key));
  });

  it("private: every chunk index has its own key and nonce, identical plaintexts differ", async () => {
    const plaintext = randomBytes(100);
    const keys = new Set<string>();
    const nonces = new Set<string>();
    const cids = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const keying = { mode: "private", fileKey, chunkIndex: i } as const;
      const key = chunkKeyFor(keying, new Uint8Array(32));
      keys.add(toHex(key));
      nonces.add(toHex(chunkNonce(key)));
      cids.add((await encryptChunk(webCryptoChunkCipher, plaintext, keying)).cid);
    }
    expect([keys.size, nonces.size, cids.size]).toEqual([50, 50, 50]);
  });

  it("rejects keys, secrets and indexes of the wrong shape", () => {
    expect(() => sealChunkSync(new Uint8Array(16), new Uint8Array(1))).toThrow(RangeError);
    expect(() => chunkNonce("k" as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => convergentChunkKey(new Uint8Array(8), new Uint8Array(32))).toThrow(/at least 16/);
    expect(() => convergentChunkKey(secret, new Uint8Array(31))).toThrow(RangeError);
    expect(() => privateChunkKey(fileKey, -1)).toThrow(RangeError);
    expect(() => privateChunkKey(fileKey, 1.5)).toThrow(RangeError);
    expect(() => privateChunkKey(fileKey, 2 ** 53)).toThrow(RangeError);
    expect(() => privateChunkKey(new Uint8Array(31), 0)).toThrow(RangeError);
  });
});

describe("authentication failures", () => {
  const key = randomBytes(32);
  const plaintext = randomBytes(1000);
  const sealed = sealChunkSync(key, plaintext);

  const corruptions: [string, Uint8Array, Uint8Array][] = [
    ["wrong key", randomBytes(32), sealed],
    ["flipped ciphertext bit", key, flip(sealed, 10)],
    ["flipped tag bit", key, flip(sealed, sealed.length - 1)],
    ["truncated", key, sealed.subarray(0, sealed.length - 1)],
    ["extended", key, Uint8Array.from([...sealed, 0])],
    ["shorter than a tag", key, sealed.subarray(0, CHUNK_TAG_BYTES - 1)],
    ["empty", key, new Uint8Array(0)],
  ];

  for (const cipher of ciphers) {
    for (const [what, k, bytes] of corruptions) {
      it(`${cipher.name}: ${what} → ChunkAuthError`, async () => {
        const error = await cipher.open(k, bytes).then(
          () => null,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(ChunkAuthError);
        expect(error).toBeInstanceOf(PeercloudError);
        expect((error as ChunkAuthError).code).toBe("chunk_auth_failed");
      });
    }
  }
});

function flip(bytes: Uint8Array, index: number): Uint8Array {
  const out = bytes.slice();
  out[index] ^= 0x01;
  return out;
}

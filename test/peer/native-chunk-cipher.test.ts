/**
 * The node:crypto chunk AEAD against the GCM spec's known answers, the
 * chunk format vectors, and the noble and WebCrypto implementations byte for
 * byte on random inputs of many sizes.
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { describe, expect, it } from "vitest";
import { fromHex, randomBytes, toHex, utf8 } from "../../src/core/bytes.js";
import { ChunkAuthError, chunkNonce, convergentChunkKey, encryptChunk, nobleChunkCipher, privateChunkKey, sealChunkSync, webCryptoChunkCipher, type ChunkKeying } from "../../src/core/chunk-cipher.js";
import { cidOfBytes } from "../../src/core/cid.js";
import { nativeChunkNonce, nativeCidOf, nativeConvergentChunkKey, nativePrivateChunkKey, nodeChunkCipher, openNative, sealChunkNative, sealNative } from "../../src/peer/native-chunk-cipher.js";
import gcmVectors from "../vectors/aes-256-gcm.json";
import format from "../vectors/chunk-format.json";

const SIZES = [0, 1, 15, 16, 17, 63, 64, 65, 1000, 4096, 65_535, 65_536, 65_537, 1024 * 1024, 1024 * 1024 + 1];
const secret = utf8(format.convergenceSecretUtf8);
const fileKey = fromHex(format.fileKey);

describe("node:crypto AES-256-GCM known answers (McGrew–Viega 13–16)", () => {
  for (const v of gcmVectors.cases) {
    it(v.name, () => {
      const [key, iv, aad, pt] = [v.key, v.iv, v.aad, v.plaintext].map(fromHex);
      const cipher = createCipheriv("aes-256-gcm", key, iv).setAAD(aad);
      const ct = Buffer.concat([cipher.update(pt), cipher.final()]);
      expect(ct.toString("hex")).toBe(v.ciphertext);
      expect(cipher.getAuthTag().toString("hex")).toBe(v.tag);
      const decipher = createDecipheriv("aes-256-gcm", key, iv).setAAD(aad);
      decipher.setAuthTag(fromHex(v.tag));
      expect(Buffer.concat([decipher.update(ct), decipher.final()]).toString("hex")).toBe(v.plaintext);
    });
  }
});

describe("chunk format vectors", () => {
  it("sealChunkNative reproduces every convergent and private vector", () => {
    for (const v of format.convergent) {
      const out = sealChunkNative(fromHex(v.plaintext), { mode: "convergent", convergenceSecret: secret });
      expect([toHex(out.key), toHex(out.plaintextSha256!), toHex(out.sealed), out.cid]).toEqual([v.key, v.plaintextSha256, v.sealed, v.cid]);
      expect(toHex(nativeChunkNonce(out.key))).toBe(v.nonce);
      expect(toHex(openNative(out.key, out.sealed))).toBe(v.plaintext);
    }
    for (const v of format.private) {
      const out = sealChunkNative(fromHex(v.plaintext), { mode: "private", fileKey, chunkIndex: v.chunkIndex });
      expect([toHex(out.key), toHex(out.sealed), out.cid]).toEqual([v.key, v.sealed, v.cid]);
      expect(out.plaintextSha256).toBeUndefined();
    }
  });
});

describe("node:crypto, noble and WebCrypto agree byte for byte", () => {
  it("on derivations", () => {
    for (let i = 0; i < 20; i++) {
      const digest = randomBytes(32);
      const s = randomBytes(16 + i);
      const key = randomBytes(32);
      expect(toHex(nativeConvergentChunkKey(s, digest))).toBe(toHex(convergentChunkKey(s, digest)));
      expect(toHex(nativeChunkNonce(key))).toBe(toHex(chunkNonce(key)));
      const index = i < 10 ? i : 2 ** 32 * i + i;
      expect(toHex(nativePrivateChunkKey(key, index))).toBe(toHex(privateChunkKey(key, index)));
    }
  });

  it("on random inputs of many sizes, both key modes", async () => {
    for (const size of SIZES) {
      const plaintext = randomBytes(size);
      const keyings: ChunkKeying[] = [
        { mode: "convergent", convergenceSecret: randomBytes(32) },
        { mode: "private", fileKey: randomBytes(32), chunkIndex: size },
      ];
      for (const keying of keyings) {
        const native = sealChunkNative(plaintext, keying);
        const web = await encryptChunk(webCryptoChunkCipher, plaintext, keying);
        expect(toHex(native.key)).toBe(toHex(web.key));
        expect(Buffer.from(native.sealed).equals(Buffer.from(web.sealed))).toBe(true);
        expect(native.cid).toBe(web.cid);
        expect(native.cid).toBe(await cidOfBytes(native.sealed));
        expect(nativeCidOf(native.sealed)).toBe(native.cid);
        // noble is ~50 MB/s: compare it on everything up to a little over 1 MiB.
        expect(Buffer.from(sealChunkSync(native.key, plaintext)).equals(Buffer.from(native.sealed))).toBe(true);
        expect(Buffer.from(openNative(native.key, web.sealed)).equals(Buffer.from(plaintext))).toBe(true);
        expect(Buffer.from(await nobleChunkCipher.open(web.key, native.sealed)).equals(Buffer.from(plaintext))).toBe(true);
      }
    }
  });

  it("through the ChunkCipher interface", async () => {
    const key = randomBytes(32);
    const plaintext = randomBytes(70_000).subarray(5);
    const sealed = await nodeChunkCipher.seal(key, plaintext);
    expect(toHex(sealed)).toBe(toHex(await webCryptoChunkCipher.seal(key, plaintext)));
    expect(toHex(await nodeChunkCipher.open(key, sealed))).toBe(toHex(plaintext));
    expect(toHex(await nodeChunkCipher.sha256(plaintext))).toBe(toHex(await webCryptoChunkCipher.sha256(plaintext)));
    expect(toHex(sealNative(key, plaintext))).toBe(toHex(sealed));
  });
});

describe("openNative failures", () => {
  const key = randomBytes(32);
  const sealed = sealNative(key, randomBytes(5000));
  const flipped = (i: number) => {
    const out = Uint8Array.from(sealed);
    out[i] ^= 0x80;
    return out;
  };
  const cases: [string, Uint8Array, Uint8Array][] = [
    ["wrong key", randomBytes(32), sealed],
    ["flipped ciphertext", key, flipped(0)],
    ["flipped tag", key, flipped(sealed.length - 16)],
    ["truncated", key, sealed.subarray(0, sealed.length - 3)],
    ["shorter than a tag", key, sealed.subarray(0, 15)],
  ];
  for (const [what, k, bytes] of cases) {
    it(`${what} → ChunkAuthError`, () => {
      expect(() => openNative(k, bytes)).toThrow(ChunkAuthError);
    });
  }

  it("rejects a key of the wrong length as a programming error", () => {
    expect(() => sealNative(new Uint8Array(16), new Uint8Array(1))).toThrow(RangeError);
    expect(() => sealChunkNative("x" as unknown as Uint8Array, { mode: "convergent", convergenceSecret: secret })).toThrow(TypeError);
  });
});

import { describe, expect, it } from "vitest";
import { ed25519 } from "@noble/curves/ed25519.js";
import { bufferSource, fromHex, toHex, utf8 } from "../../src/core/bytes.js";
import { generateIdentity, identityFromSecret, nobleEd25519, publicKeyFromSecret, sign, verify } from "../../src/core/identity.js";

// RFC 8032 §7.1, TEST 1 and TEST 2.
const RFC8032 = [
  {
    secret: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    publicKey: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    message: "",
    signature: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
  },
  {
    secret: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
    publicKey: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    message: "72",
    signature: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
  },
];

describe("Ed25519 identities", () => {
  it.each(RFC8032)("matches RFC 8032 vector for message '$message'", async (v) => {
    const secret = fromHex(v.secret);
    expect(toHex(publicKeyFromSecret(secret))).toBe(v.publicKey);
    expect(toHex(await sign(secret, fromHex(v.message)))).toBe(v.signature);
    expect(await verify(fromHex(v.publicKey), fromHex(v.message), fromHex(v.signature))).toBe(true);
  });

  it("native (WebCrypto) and noble agree byte for byte on random keys and messages", async () => {
    for (let i = 0; i < 20; i++) {
      const id = await generateIdentity();
      const msg = crypto.getRandomValues(new Uint8Array(i * 37));
      const native = await sign(id.secretKey, msg);
      expect(toHex(native)).toBe(toHex(nobleEd25519.sign(id.secretKey, msg)));
      expect(nobleEd25519.verify(id.publicKey, msg, native)).toBe(true);
      expect(ed25519.verify(native, msg, id.publicKey)).toBe(true);
    }
  });

  it("verify returns false (never throws) for tampered or malformed input", async () => {
    const id = await generateIdentity();
    const msg = utf8("hello");
    const sig = await sign(id.secretKey, msg);
    const flipped = sig.slice();
    flipped[10] ^= 1;
    expect(await verify(id.publicKey, msg, flipped)).toBe(false);
    expect(await verify(id.publicKey, utf8("hellp"), sig)).toBe(false);
    expect(await verify(id.publicKey.slice(1), msg, sig)).toBe(false);
    expect(await verify(id.publicKey, msg, sig.slice(1))).toBe(false);
    expect(await verify(new Uint8Array(32).fill(0xff), msg, sig)).toBe(false);
  });

  it("derives the node ID as the SHA-256 of the public key", async () => {
    const id = await identityFromSecret(fromHex(RFC8032[0].secret));
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bufferSource(fromHex(RFC8032[0].publicKey))));
    expect(id.nodeId).toBe(toHex(digest));
    expect(id.nodeId).toMatch(/^[0-9a-f]{64}$/);
  });
});

/**
 * Ed25519 identities (RFC 8032).
 *
 * Signing and verification go through WebCrypto, which is native in workerd,
 * Node ≥ 20 and current browsers (the edge pays per CPU-millisecond, and a
 * noble verification costs ~2 ms against ~0.1 ms natively). @noble/curves is
 * the portable fallback where WebCrypto lacks Ed25519, and the reference the
 * tests cross-check against. Secret keys are the 32-byte RFC 8032 seeds.
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { bufferSource, concatBytes, fromHex, randomBytes } from "./bytes.js";
import { nodeIdFromPublicKey, type NodeId } from "./node-id.js";

export const PUBLIC_KEY_BYTES = 32;
export const SECRET_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;

export interface KeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

export interface Identity extends KeyPair {
  nodeId: NodeId;
}

// PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410 §7): fixed 16-byte prefix.
const PKCS8_ED25519_PREFIX = fromHex("302e020100300506032b657004220420");

let webCryptoEd25519: boolean | undefined;

async function hasWebCryptoEd25519(): Promise<boolean> {
  if (webCryptoEd25519 === undefined) {
    try {
      const seed = new Uint8Array(32);
      const key = await crypto.subtle.importKey("pkcs8", bufferSource(concatBytes(PKCS8_ED25519_PREFIX, seed)), { name: "Ed25519" }, false, ["sign"]);
      await crypto.subtle.sign({ name: "Ed25519" }, key, new Uint8Array(1));
      webCryptoEd25519 = true;
    } catch {
      webCryptoEd25519 = false;
    }
  }
  return webCryptoEd25519;
}

export function publicKeyFromSecret(secretKey: Uint8Array): Uint8Array {
  assertLength(secretKey, SECRET_KEY_BYTES, "secret key");
  return ed25519.getPublicKey(secretKey);
}

export function generateKeyPair(): KeyPair {
  const secretKey = randomBytes(SECRET_KEY_BYTES);
  return { secretKey, publicKey: publicKeyFromSecret(secretKey) };
}

export async function identityFromSecret(secretKey: Uint8Array): Promise<Identity> {
  const publicKey = publicKeyFromSecret(secretKey);
  return { secretKey, publicKey, nodeId: await nodeIdFromPublicKey(publicKey) };
}

export async function generateIdentity(): Promise<Identity> {
  return identityFromSecret(generateKeyPair().secretKey);
}

const signKeyCache = new WeakMap<Uint8Array, CryptoKey>();

export async function sign(secretKey: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
  assertLength(secretKey, SECRET_KEY_BYTES, "secret key");
  if (await hasWebCryptoEd25519()) {
    let key = signKeyCache.get(secretKey);
    if (!key) {
      key = await crypto.subtle.importKey("pkcs8", bufferSource(concatBytes(PKCS8_ED25519_PREFIX, secretKey)), { name: "Ed25519" }, false, ["sign"]);
      signKeyCache.set(secretKey, key);
    }
    return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, bufferSource(message)));
  }
  return ed25519.sign(message, secretKey);
}

/** False (never a throw) for any malformed key or signature: callers map false to one clear error. */
export async function verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
  if (publicKey.length !== PUBLIC_KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
  try {
    if (await hasWebCryptoEd25519()) {
      const key = await crypto.subtle.importKey("raw", bufferSource(publicKey), { name: "Ed25519" }, false, ["verify"]);
      return await crypto.subtle.verify({ name: "Ed25519" }, key, bufferSource(signature), bufferSource(message));
    }
    return ed25519.verify(signature, message, publicKey);
  } catch {
    return false;
  }
}

/** The portable implementation, exported for cross-tests and for runtimes without WebCrypto Ed25519. */
export const nobleEd25519 = {
  sign: (secretKey: Uint8Array, message: Uint8Array): Uint8Array => ed25519.sign(message, secretKey),
  verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean => {
    try {
      return ed25519.verify(signature, message, publicKey);
    } catch {
      return false;
    }
  },
};

function assertLength(bytes: Uint8Array, length: number, label: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) throw new TypeError(`${label}: expected ${length} bytes`);
}

/**
 * The seal addon (seal-addon.cc, built by `npm ci` through
 * scripts/build-seal-addon.mjs), when it is there: AES-256-GCM into the
 * caller's buffer with the SHA-256 of ciphertext || tag in the same pass,
 * on the OpenSSL inside Node. sealChunkInto (seal-into.ts) uses it when it
 * loaded and node:crypto's pieces otherwise; both give the same bytes.
 *
 * PEERCLOUD_SEAL_ADDON=0 keeps it unloaded, to compare the two paths or to
 * rule the addon out when chasing a problem.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

export interface SealAddon {
  /**
   * Writes ciphertext || tag of `plaintext` under (key, nonce) to
   * output[0, plaintext.length + 16) and returns the SHA-256 of those bytes.
   * `output` starts where `plaintext` does (in place) or does not overlap
   * it (sealChunkInto, seal-into.ts, checks).
   */
  sealInto(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, output: Uint8Array): Uint8Array;
}

const ADDON_PATH = fileURLToPath(new URL("../../build/Release/peercloud_seal.node", import.meta.url));

function load(): { addon?: SealAddon; absence?: string } {
  if (process.env.PEERCLOUD_SEAL_ADDON === "0") return { absence: "turned off (PEERCLOUD_SEAL_ADDON=0)" };
  if (!existsSync(ADDON_PATH)) return { absence: "not built (see build/seal-addon-build.log, or run `npm run build:addon`)" };
  try {
    const addon = createRequire(import.meta.url)(ADDON_PATH) as Partial<SealAddon>;
    if (typeof addon.sealInto !== "function") return { absence: `${ADDON_PATH} has no sealInto()` };
    return { addon: addon as SealAddon };
  } catch (error) {
    // A build for another Node ABI or a missing OpenSSL symbol: seal without it rather than fail every put.
    return { absence: `failed to load: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}` };
  }
}

const loaded = load();

/** The addon, or undefined when it is not built, not loadable or turned off. */
export const sealAddon: SealAddon | undefined = loaded.addon;

/** Why sealAddon is undefined (the benchmarks print it, the addon's tests skip with it); undefined when it loaded. */
export const sealAddonAbsence: string | undefined = loaded.absence;

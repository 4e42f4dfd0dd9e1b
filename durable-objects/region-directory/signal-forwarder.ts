/**
 * Signals to a peer of another region go through that region's directory
 * (its `deliverSignal` RPC), addressed like the Worker addresses it: by
 * name, with the location hint of REGIONS. Only configured regions are
 * accepted, so a typo cannot create an empty object somewhere.
 */
import { isPeercloudError, NotFoundError, ValidationError } from "../../src/core/errors.js";
import { isRegionName } from "../../src/core/region-map.js";
import type { Env } from "../../workers/env.js";

export async function forwardSignal(env: Env, from: string, fromRegion: string, toRegion: string, to: string, payload: unknown): Promise<void> {
  const hints = parseRegions(env.REGIONS);
  if (hints && !(toRegion in hints)) throw new ValidationError(`unknown region ${JSON.stringify(toRegion)}`, "unknown_region");
  const hint = hints?.[toRegion] as DurableObjectLocationHint | undefined;
  const ns = env.REGION_DIRECTORY;
  try {
    await ns.get(ns.idFromName(toRegion), hint ? { locationHint: hint } : undefined).deliverSignal(from, fromRegion, to, payload);
  } catch (err) {
    // RPC keeps an error's message but not its class or fields: the code is recovered from the message.
    if ((isPeercloudError(err) && err.code === "peer_not_connected") || String((err as Error)?.message).includes("peer_not_connected")) {
      throw new NotFoundError("peer_not_connected", `peer ${to.slice(0, 16)}… is not connected to region ${toRegion}`);
    }
    throw err;
  }
}

/** REGIONS (JSON text or a TOML table): region name → location hint; null when unset or unreadable. */
function parseRegions(raw: unknown): Record<string, string> | null {
  try {
    const value = typeof raw === "string" ? JSON.parse(raw) : raw;
    if (value && typeof value === "object" && Object.keys(value).every(isRegionName)) return value as Record<string, string>;
  } catch {
    // unreadable: accept any region name
  }
  return null;
}

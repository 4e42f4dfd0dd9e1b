/**
 * Liveness rules of the heartbeat protocol: a peer's state follows only from
 * when it was last heard from, the current time and the network parameters.
 *
 * The failure detector is the classic fixed-timeout one (Chandra & Toueg's
 * "eventually perfect" detector in its simplest form): after
 * `suspectAfterMissedHeartbeats` silent intervals a peer is *suspect* (still
 * counted as a replica holder, offered last), after
 * `deadAfterMissedHeartbeats` it is *dead* (leaves the DHT buckets, its
 * replicas stop counting). Any news revives it. Two thresholds rather than
 * one because a deploy or a network blip silences many peers at once: the
 * suspect stage keeps them useful while they reconnect with backoff, and
 * only a sustained silence triggers repair traffic.
 *
 * Pure functions so that the region directory, the simulator and the tests
 * share one definition of "dead".
 */
import type { PeerState } from "./messages.js";
import type { NetworkParams } from "./params.js";

export type LivenessParams = Pick<NetworkParams, "heartbeatIntervalMs" | "suspectAfterMissedHeartbeats" | "deadAfterMissedHeartbeats">;

/** Silence after which a peer is suspect. */
export function suspectAfterMs(params: LivenessParams): number {
  return params.heartbeatIntervalMs * params.suspectAfterMissedHeartbeats;
}

/** Silence after which a peer is dead. */
export function deadAfterMs(params: LivenessParams): number {
  return params.heartbeatIntervalMs * params.deadAfterMissedHeartbeats;
}

/** The state of a peer last heard from at `lastSeenMs`, at time `nowMs`. A silence of exactly the threshold counts as missed. */
export function livenessState(lastSeenMs: number, nowMs: number, params: LivenessParams): PeerState {
  const silentMs = nowMs - lastSeenMs;
  if (silentMs >= deadAfterMs(params)) return "dead";
  if (silentMs >= suspectAfterMs(params)) return "suspect";
  return "alive";
}

/**
 * When the state of a peer last heard from at `lastSeenMs` changes next if
 * nothing more is heard, as seen at `nowMs`; null once it is dead (nothing
 * further happens to a silent dead peer). Used to re-arm the sweep alarm to
 * the earliest expiry instead of polling.
 */
export function nextLivenessChangeMs(lastSeenMs: number, nowMs: number, params: LivenessParams): number | null {
  switch (livenessState(lastSeenMs, nowMs, params)) {
    case "alive":
      return lastSeenMs + suspectAfterMs(params);
    case "suspect":
      return lastSeenMs + deadAfterMs(params);
    case "dead":
      return null;
  }
}

/**
 * The latest of several pieces of evidence that a peer was alive (last real
 * message, last auto-answered ping, last persisted sighting); missing ones
 * are skipped. Returns -Infinity when there is none.
 */
export function latestSightingMs(...sightingsMs: (number | null | undefined)[]): number {
  let latest = -Infinity;
  for (const ms of sightingsMs) if (typeof ms === "number" && Number.isFinite(ms) && ms > latest) latest = ms;
  return latest;
}

/** Whether moving from `from` to `to` changes whether the peer's replicas count (alive/suspect count, dead does not). */
export function replicasCountChange(from: PeerState | null, to: PeerState): -1 | 0 | 1 {
  const counted = (s: PeerState | null) => s === "alive" || s === "suspect";
  if (counted(from) === counted(to)) return 0;
  return counted(to) ? 1 : -1;
}

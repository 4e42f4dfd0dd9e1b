/**
 * Seeded randomness for the simulators: the same seed gives the same run on
 * every platform (plain 32-bit integer arithmetic, no Math.random).
 *
 * mulberry32 (Tommy Ettinger's 32-bit generator, the one the core tests and
 * bench:sched use) for the stream itself; `deriveSeed` mixes a base seed with
 * stream labels (a murmur3-style finaliser) so that independent parts of a
 * simulation — the peers' failure trace, the placement of each chunk, repair
 * choices — draw from separate streams and a change in one does not shift
 * the others. That is what makes paired runs (same seed, different
 * replication factor) comparable.
 */

import type { Rand } from "../core/random.js";

export { mulberry32, type Rand } from "../core/random.js";

/** A 32-bit seed for the stream named by `labels` under `seed` (murmur3 fmix32 over each part). */
export function deriveSeed(seed: number, ...labels: number[]): number {
  let h = seed >>> 0;
  for (const label of [0x9e3779b9, ...labels]) {
    h = Math.imul(h ^ (label >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** An exponentially distributed draw with the given rate (per unit of the result); Infinity when the rate is 0. */
export function exponential(rand: Rand, rate: number): number {
  if (rate <= 0) return Infinity;
  return -Math.log(1 - rand()) / rate;
}

/** A uniform integer in [0, n). */
export function randomInt(rand: Rand, n: number): number {
  return Math.floor(rand() * n);
}

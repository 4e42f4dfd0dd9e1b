/**
 * Seeded randomness shared by the core, the simulators, benchmarks and
 * tests: the same seed gives the same sequence on every platform (plain
 * 32-bit integer arithmetic, no Math.random), which is what makes a
 * download's tie-break order, a simulation or a property test reproducible.
 */

/** A uniform draw in [0, 1). */
export type Rand = () => number;

/** mulberry32 (Tommy Ettinger's 32-bit generator): tiny, 2^32 period, ample for these uses. */
export function mulberry32(seed: number): Rand {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

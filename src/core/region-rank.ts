/**
 * Which other regions are nearest, from a region directory's estimates of
 * the quality between its region and each other one (issue 5, "Scores";
 * durable-objects/region-directory/region-quality.ts). Used wherever work
 * leaves the home region: providers topped up from other regions (nearest
 * first) and replicas placed in other regions by a minimum-regions policy.
 *
 * "Nearest" is the expected time to fetch one typical chunk from there:
 * round trip plus chunk size over delivery rate. An estimate with only one
 * of the two counts with the missing part at the worst measured one (a
 * region known only to be far away is still better known than one never
 * measured). Regions never measured come after every measured one, in the
 * order given (the edge's configuration order), so the answer is the
 * configured order until the first measurements arrive.
 */

export interface RegionEstimate {
  region: string;
  rttMs: number | null;
  rateBytesPerSecond: number | null;
}

/** The chunker's average chunk (src/core/chunker.ts DEFAULT_AVG_CHUNK_BYTES): what a fetch typically moves. */
const TYPICAL_FETCH_BYTES = 1024 * 1024;

/** `regions` without `local`, nearest first by `estimates`; unmeasured regions last, in their given order. */
export function rankRegions(local: string, regions: readonly string[], estimates: readonly RegionEstimate[]): string[] {
  const known = new Map(estimates.filter((e) => e.rttMs !== null || e.rateBytesPerSecond !== null).map((e) => [e.region, e]));
  const rtts = [...known.values()].map((e) => e.rttMs).filter((x): x is number => x !== null);
  const rates = [...known.values()].map((e) => e.rateBytesPerSecond).filter((x): x is number => x !== null && x > 0);
  const worstRtt = rtts.length > 0 ? Math.max(...rtts) : 0;
  const worstRate = rates.length > 0 ? Math.min(...rates) : null;
  const costMs = (e: RegionEstimate): number => {
    const rtt = e.rttMs ?? worstRtt;
    const rate = e.rateBytesPerSecond !== null && e.rateBytesPerSecond > 0 ? e.rateBytesPerSecond : worstRate;
    return rtt + (rate === null ? 0 : (1000 * TYPICAL_FETCH_BYTES) / rate);
  };
  const others = [...new Set(regions)].filter((r) => r !== local);
  const order = new Map(others.map((r, i) => [r, i]));
  return others.sort((a, b) => {
    const ea = known.get(a);
    const eb = known.get(b);
    if (ea && eb) return costMs(ea) - costMs(eb) || order.get(a)! - order.get(b)!;
    if (ea || eb) return ea ? -1 : 1;
    return order.get(a)! - order.get(b)!;
  });
}

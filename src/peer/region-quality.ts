/**
 * This peer's view of each region's sources: moving averages of the round
 * trip and delivery rate its downloads measured (source-scores.ts), by the
 * region the directory named for each source. Sent with the status reports
 * (`regionQuality`), from which the region directory keeps its estimates
 * of the quality between regions (issue 5, "Scores").
 *
 * One sample per source and download, weighted like a moving average that
 * forgets (each new sample moves the estimate `WEIGHT` of the way), so a
 * link that got worse shows within a few downloads.
 */
import { MAX_REGION_QUALITY_ENTRIES, type RegionQualityReport } from "../core/messages.js";

const WEIGHT = 0.3;

interface Estimate {
  rttMs: number | null;
  rateBytesPerSecond: number | null;
  samples: number;
}

export interface RegionSample {
  region: string;
  rttMs: number | null;
  rateBytesPerSecond: number | null;
}

export class RegionQualityMeter {
  private readonly regions = new Map<string, Estimate>();

  record(sample: RegionSample): void {
    if (sample.rttMs === null && sample.rateBytesPerSecond === null) return;
    const e = this.regions.get(sample.region) ?? { rttMs: null, rateBytesPerSecond: null, samples: 0 };
    e.rttMs = blend(e.rttMs, sample.rttMs);
    e.rateBytesPerSecond = blend(e.rateBytesPerSecond, sample.rateBytesPerSecond);
    e.samples++;
    // Most recently measured last, so that the report keeps the freshest regions when there are too many.
    this.regions.delete(sample.region);
    this.regions.set(sample.region, e);
    if (this.regions.size > MAX_REGION_QUALITY_ENTRIES) this.regions.delete(this.regions.keys().next().value!);
  }

  /** The estimates so far, or undefined when nothing was measured (the status report then leaves the field out). */
  report(): RegionQualityReport | undefined {
    if (this.regions.size === 0) return undefined;
    return [...this.regions].map(([region, e]) => ({ region, rttMs: round(e.rttMs), rateBytesPerSecond: round(e.rateBytesPerSecond), samples: e.samples }));
  }
}

function blend(old: number | null, sample: number | null): number | null {
  if (sample === null || !Number.isFinite(sample) || sample < 0) return old;
  return old === null ? sample : old + WEIGHT * (sample - old);
}

function round(x: number | null): number | null {
  return x === null ? null : Math.round(x * 10) / 10;
}

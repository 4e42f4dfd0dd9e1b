/**
 * The directory's estimates of the quality between its region and each
 * other one (issue 5, "Scores"): round trip and delivery rate, folded from
 * what this region's peers measured of the sources they downloaded from
 * (the `regionQuality` of their status reports, src/peer/region-quality.ts).
 *
 * One SQL row per remote region (this region's own sources included, as a
 * baseline), updated as a moving average weighted by how many downloads a
 * report summarises, so one peer's single odd download moves it little and
 * a steady change shows within a few reports. Rows are written only when a
 * report carries measurements, so quiet peers cost nothing.
 */
import type { RegionQualityReport } from "../../src/core/messages.js";
import type { Sql } from "./sql.js";

/** Weight of one summarised download against the estimate so far (the moving average's step per sample). */
const SAMPLE_WEIGHT = 0.1;
/** A report's weight is capped: one busy peer must not overwrite what the others measured. */
const MAX_REPORT_WEIGHT = 0.5;

export interface RegionQuality {
  region: string;
  rttMs: number | null;
  rateBytesPerSecond: number | null;
  /** Downloads behind the estimate (sum over reports, each peer's count as it reported it last). */
  samples: number;
  updatedMs: number;
}

type Row = { region: string; rtt_ms: number | null; rate_bps: number | null; samples: number; updated_ms: number };

export class RegionQualityStore {
  constructor(private readonly sql: Sql) {}

  observe(report: RegionQualityReport, nowMs: number): void {
    for (const entry of report) {
      const old = this.get(entry.region);
      const w = old === null ? 1 : Math.min(MAX_REPORT_WEIGHT, SAMPLE_WEIGHT * entry.samples);
      const rtt = blend(old?.rttMs ?? null, entry.rttMs, w);
      const rate = blend(old?.rateBytesPerSecond ?? null, entry.rateBytesPerSecond, w);
      this.sql.exec(
        `INSERT INTO region_quality (region, rtt_ms, rate_bps, samples, updated_ms) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (region) DO UPDATE SET rtt_ms = excluded.rtt_ms, rate_bps = excluded.rate_bps, samples = region_quality.samples + ?, updated_ms = excluded.updated_ms`,
        entry.region,
        rtt,
        rate,
        entry.samples,
        nowMs,
        entry.samples,
      );
    }
  }

  get(region: string): RegionQuality | null {
    const row = this.sql.exec<Row>(`SELECT * FROM region_quality WHERE region = ?`, region).toArray()[0];
    return row ? fromRow(row) : null;
  }

  /** Every estimate, best delivery rate first (regions without one last). */
  list(): RegionQuality[] {
    return this.sql.exec<Row>(`SELECT * FROM region_quality ORDER BY rate_bps IS NULL, rate_bps DESC, region`).toArray().map(fromRow);
  }
}

function fromRow(r: Row): RegionQuality {
  return { region: r.region, rttMs: r.rtt_ms, rateBytesPerSecond: r.rate_bps, samples: r.samples, updatedMs: r.updated_ms };
}

function blend(old: number | null, sample: number | null, w: number): number | null {
  if (sample === null) return old;
  return old === null ? sample : old + w * (sample - old);
}

/** The liveness rules (src/core/liveness.ts) and the env-var mapping of network parameters (src/core/params-env.ts). */
import { describe, expect, it } from "vitest";
import { deadAfterMs, latestSightingMs, livenessState, nextLivenessChangeMs, replicasCountChange, suspectAfterMs } from "../../src/core/liveness.js";
import { DEFAULT_PARAMS, type NetworkParams } from "../../src/core/params.js";
import { envVarName, paramName, paramOverridesFromEnv, paramsFromEnv } from "../../src/core/params-env.js";

const params = { heartbeatIntervalMs: 1000, suspectAfterMissedHeartbeats: 3, deadAfterMissedHeartbeats: 6 };

describe("liveness state", () => {
  it("is alive, then suspect, then dead as silence grows past the thresholds", () => {
    expect(suspectAfterMs(params)).toBe(3000);
    expect(deadAfterMs(params)).toBe(6000);
    const seen = 10_000;
    expect(livenessState(seen, seen, params)).toBe("alive");
    expect(livenessState(seen, seen + 2999, params)).toBe("alive");
    expect(livenessState(seen, seen + 3000, params)).toBe("suspect");
    expect(livenessState(seen, seen + 5999, params)).toBe("suspect");
    expect(livenessState(seen, seen + 6000, params)).toBe("dead");
    expect(livenessState(seen, seen + 1e9, params)).toBe("dead");
    // A sighting "from the future" (clock skew between evidence sources) is simply alive.
    expect(livenessState(seen + 500, seen, params)).toBe("alive");
  });

  it("names the next change: suspect time while alive, death time while suspect, none once dead", () => {
    const seen = 10_000;
    expect(nextLivenessChangeMs(seen, seen + 100, params)).toBe(13_000);
    expect(nextLivenessChangeMs(seen, seen + 3000, params)).toBe(16_000);
    expect(nextLivenessChangeMs(seen, seen + 6000, params)).toBeNull();
    // The next change is always in the future of `now` while it exists: re-arming there cannot spin.
    for (let now = seen; now < seen + 6000; now += 250) expect(nextLivenessChangeMs(seen, now, params)!).toBeGreaterThan(now);
  });

  it("takes the latest of several sightings, skipping missing ones", () => {
    expect(latestSightingMs(5, null, 9, undefined, 7)).toBe(9);
    expect(latestSightingMs(null, undefined)).toBe(-Infinity);
    expect(latestSightingMs(Number.NaN, 3)).toBe(3);
  });

  it("says when a peer's replicas start or stop counting", () => {
    expect(replicasCountChange("alive", "dead")).toBe(-1);
    expect(replicasCountChange("suspect", "dead")).toBe(-1);
    expect(replicasCountChange("dead", "alive")).toBe(1);
    expect(replicasCountChange("dead", "suspect")).toBe(1);
    expect(replicasCountChange("alive", "suspect")).toBe(0);
    expect(replicasCountChange("suspect", "alive")).toBe(0);
    expect(replicasCountChange("dead", "dead")).toBe(0);
    expect(replicasCountChange(null, "alive")).toBe(1);
  });
});

describe("network parameters from environment variables", () => {
  it("maps every parameter to SCREAMING_SNAKE_CASE and back", () => {
    expect(envVarName("heartbeatIntervalMs")).toBe("HEARTBEAT_INTERVAL_MS");
    expect(envVarName("deadAfterMissedHeartbeats")).toBe("DEAD_AFTER_MISSED_HEARTBEATS");
    expect(envVarName("k")).toBe("K");
    for (const p of Object.keys(DEFAULT_PARAMS) as (keyof NetworkParams)[]) expect(paramName(envVarName(p))).toBe(p);
    expect(paramName("ADMIN_SECRET")).toBeUndefined();
  });

  it("applies overrides from vars and ignores unrelated or empty ones", () => {
    const env = { HEARTBEAT_INTERVAL_MS: "1000", K: 8, SNAPSHOT_INTERVAL_MS: "", ADMIN_SECRET: "x", REGIONS: { eu: "weur" } };
    expect(paramOverridesFromEnv(env)).toEqual({ heartbeatIntervalMs: "1000", k: 8 });
    const p = paramsFromEnv(env);
    expect(p.heartbeatIntervalMs).toBe(1000);
    expect(p.k).toBe(8);
    expect(p.snapshotIntervalMs).toBe(DEFAULT_PARAMS.snapshotIntervalMs);
  });

  it("refuses nonsense at startup rather than running with it", () => {
    expect(() => paramsFromEnv({ HEARTBEAT_INTERVAL_MS: "soon" })).toThrow(RangeError);
    expect(() => paramsFromEnv({ SUSPECT_AFTER_MISSED_HEARTBEATS: "9", DEAD_AFTER_MISSED_HEARTBEATS: "4" })).toThrow(RangeError);
  });
});

import { describe, expect, it } from "vitest";
import { chooseRegion, parseRegionConfig } from "../../src/core/region-map.js";
import { DEFAULT_PARAMS, resolveParams } from "../../src/core/params.js";
import { generateJoinToken, isJoinTokenShape, joinTokenId, joinTokenStatus, type JoinTokenRecord } from "../../src/core/join-token.js";

const config = parseRegionConfig({ eu: "weur", us: "enam", ap: "apac" }, { continents: { EU: "eu", NA: "us", AS: "ap" }, countries: { TR: "eu" }, default: "us" });

describe("region choice", () => {
  it("prefers an explicit choice, then country, then continent, then the default", () => {
    expect(chooseRegion(config, { requested: "ap", country: "DE", continent: "EU" })).toBe("ap");
    expect(chooseRegion(config, { country: "TR", continent: "AS" })).toBe("eu");
    expect(chooseRegion(config, { country: "JP", continent: "AS" })).toBe("ap");
    expect(chooseRegion(config, {})).toBe("us");
  });
  it("refuses unknown regions and regions the token does not allow", () => {
    expect(() => chooseRegion(config, { requested: "mars" })).toThrow(expect.objectContaining({ code: "unknown_region" }));
    expect(() => chooseRegion(config, { requested: "ap", allowed: ["eu"] })).toThrow(expect.objectContaining({ code: "region_not_allowed" }));
    expect(chooseRegion(config, { continent: "AS", allowed: ["eu"] })).toBe("eu");
  });
  it("rejects a map that names regions that do not exist", () => {
    expect(() => parseRegionConfig({ eu: "weur" }, { continents: { NA: "us" } })).toThrow(/unknown region/);
    expect(() => parseRegionConfig("{}", "{}")).toThrow(/at least one region/);
  });
});

describe("network parameters", () => {
  it("apply overrides from strings and keep defaults elsewhere", () => {
    const p = resolveParams({ heartbeatIntervalMs: "1000" });
    expect(p.heartbeatIntervalMs).toBe(1000);
    expect(p.k).toBe(DEFAULT_PARAMS.k);
  });
  it("refuse nonsense", () => {
    expect(() => resolveParams({ k: "-1" })).toThrow(RangeError);
    expect(() => resolveParams({ k: "two" })).toThrow(RangeError);
    expect(() => resolveParams({ suspectAfterMissedHeartbeats: 5, deadAfterMissedHeartbeats: 5 })).toThrow(RangeError);
  });
});

describe("join tokens", () => {
  it("have a recognisable shape and a stable hashed ID", async () => {
    const t = generateJoinToken();
    expect(isJoinTokenShape(t)).toBe(true);
    expect(isJoinTokenShape(t + "x")).toBe(false);
    expect(await joinTokenId(t)).toBe(await joinTokenId(t));
    expect(await joinTokenId(t)).not.toBe(await joinTokenId(generateJoinToken()));
  });
  it("report expiry and revocation", () => {
    const rec: JoinTokenRecord = { id: "x", label: "l", createdAtMs: 0, expiresAtMs: 100, revokedAtMs: null, roles: ["service"], regions: [] };
    expect(joinTokenStatus(rec, 99)).toBe("valid");
    expect(joinTokenStatus(rec, 100)).toBe("expired");
    expect(joinTokenStatus({ ...rec, revokedAtMs: 50 }, 10)).toBe("revoked");
    expect(joinTokenStatus({ ...rec, expiresAtMs: null }, 1e15)).toBe("valid");
  });
});

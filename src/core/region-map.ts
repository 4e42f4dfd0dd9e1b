/**
 * Region choice at bootstrap. Configured in wrangler.toml as
 * `REGIONS` (JSON: region name → Durable Object location hint) and
 * `REGION_MAP` (JSON: { countries: {CC: region}, continents: {XX: region},
 * default: region }). Country wins over continent, which wins over the default.
 */
import { ValidationError } from "./errors.js";

export interface RegionConfig {
  /** Region name → location hint for its Durable Object (e.g. "weur"). */
  regions: Record<string, string>;
  countries: Record<string, string>;
  continents: Record<string, string>;
  defaultRegion: string;
}

export const REGION_NAME_RE = /^[a-z][a-z0-9-]{0,31}$/;

export function parseRegionConfig(regionsJson: unknown, mapJson: unknown): RegionConfig {
  const regions = parseJsonObject(regionsJson, "REGIONS") as Record<string, string>;
  const map = parseJsonObject(mapJson, "REGION_MAP") as { countries?: Record<string, string>; continents?: Record<string, string>; default?: string };
  const names = Object.keys(regions);
  if (names.length === 0) throw new Error("REGIONS must name at least one region");
  for (const n of names) if (!REGION_NAME_RE.test(n)) throw new Error(`REGIONS: bad region name ${JSON.stringify(n)}`);
  const check = (where: string, r: unknown) => {
    if (typeof r !== "string" || !(r in regions)) throw new Error(`REGION_MAP ${where} names unknown region ${JSON.stringify(r)}`);
  };
  for (const [k, r] of Object.entries(map.countries ?? {})) check(`countries.${k}`, r);
  for (const [k, r] of Object.entries(map.continents ?? {})) check(`continents.${k}`, r);
  const defaultRegion = map.default ?? names[0];
  check("default", defaultRegion);
  return { regions, countries: map.countries ?? {}, continents: map.continents ?? {}, defaultRegion };
}

export interface RegionRequest {
  requested?: string;
  /** Regions the peer's join token lets it choose; empty means any. */
  allowed?: readonly string[];
  country?: string | null;
  continent?: string | null;
}

export function chooseRegion(config: RegionConfig, req: RegionRequest): string {
  if (req.requested !== undefined) {
    if (!(req.requested in config.regions)) {
      throw new ValidationError(`unknown region ${JSON.stringify(req.requested)}; known: ${Object.keys(config.regions).join(", ")}`, "unknown_region");
    }
    if (req.allowed && req.allowed.length && !req.allowed.includes(req.requested)) {
      throw new ValidationError(`this join token does not allow region ${req.requested}`, "region_not_allowed");
    }
    return req.requested;
  }
  const byCountry = req.country ? config.countries[req.country] : undefined;
  const byContinent = req.continent ? config.continents[req.continent] : undefined;
  const chosen = byCountry ?? byContinent ?? config.defaultRegion;
  if (req.allowed && req.allowed.length && !req.allowed.includes(chosen)) return req.allowed[0];
  return chosen;
}

export function isRegionName(value: unknown): value is string {
  return typeof value === "string" && REGION_NAME_RE.test(value);
}

function parseJsonObject(value: unknown, name: string): Record<string, unknown> {
  const parsed = typeof value === "string" ? JSON.parse(value) : value;
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error(`${name} must be a JSON object`);
  return parsed as Record<string, unknown>;
}

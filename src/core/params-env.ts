/**
 * Network parameters from environment variables: every tunable of
 * `params.ts` may be overridden by a Worker var (wrangler.toml [vars], a
 * test binding) or a process environment variable named after it in
 * SCREAMING_SNAKE_CASE — `heartbeatIntervalMs` ↔ `HEARTBEAT_INTERVAL_MS`,
 * `k` ↔ `K`. The edge Worker and the region directory both read their
 * parameters through here, so they cannot disagree on a name.
 */
import { DEFAULT_PARAMS, resolveParams, type NetworkParams } from "./params.js";

export type ParamName = keyof NetworkParams;

const PARAM_NAMES = Object.keys(DEFAULT_PARAMS) as ParamName[];

/** `heartbeatIntervalMs` → `HEARTBEAT_INTERVAL_MS`. */
export function envVarName(param: ParamName): string {
  return param.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

const BY_ENV_VAR = new Map<string, ParamName>(PARAM_NAMES.map((p) => [envVarName(p), p]));

/** `HEARTBEAT_INTERVAL_MS` → `heartbeatIntervalMs`, or undefined for a variable that names no parameter. */
export function paramName(envVar: string): ParamName | undefined {
  return BY_ENV_VAR.get(envVar);
}

/** The parameter overrides present in `env` (unset and empty variables are skipped). */
export function paramOverridesFromEnv(env: Readonly<Record<string, unknown>>): Partial<Record<ParamName, unknown>> {
  const out: Partial<Record<ParamName, unknown>> = {};
  for (const [envVar, param] of BY_ENV_VAR) {
    const raw = env[envVar];
    if (raw !== undefined && raw !== null && raw !== "") out[param] = raw;
  }
  return out;
}

/** The defaults with `env`'s overrides applied; throws RangeError on a nonsensical value (a deploy-time mistake). */
export function paramsFromEnv(env: Readonly<Record<string, unknown>>): NetworkParams {
  return resolveParams(paramOverridesFromEnv(env));
}

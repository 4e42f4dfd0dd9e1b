/**
 * The edge's bindings, as declared in wrangler.toml. Secrets come from
 * `wrangler secret put` in production and from .dev.vars locally.
 */
import type { RegionDirectory } from "../durable-objects/region-directory.js";
import type { ReplayGuard } from "../durable-objects/replay-guard.js";

export interface Env {
  REGION_DIRECTORY: DurableObjectNamespace<RegionDirectory>;
  REPLAY_GUARD: DurableObjectNamespace<ReplayGuard>;
  CHUNKS: R2Bucket;
  DASHBOARD: KVNamespace;
  BOOTSTRAP_LIMITER: RateLimit;
  UPLOAD_LIMITER: RateLimit;
  /** Bearer secret of the admin API. */
  ADMIN_SECRET: string;
  /** The network's Ed25519 signing key: a 32-byte seed, base64url. */
  EDGE_SIGNING_KEY: string;
  /** JSON (or a TOML table): region name → location hint. */
  REGIONS: string | Record<string, string>;
  /** JSON (or a TOML table): { countries, continents, default }. */
  REGION_MAP: string | Record<string, unknown>;
  /** Optional overrides of src/core/params.ts, as SCREAMING_SNAKE_CASE vars. */
  [param: string]: unknown;
}

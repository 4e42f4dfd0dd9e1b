/**
 * Entry point of the edge Worker (wrangler.toml `main`): the hono app as the
 * fetch handler, and the Durable Object classes the bindings name.
 */
import { app } from "./app.js";
import type { Env } from "./env.js";

export { RegionDirectory } from "../durable-objects/region-directory.js";
export { ReplayGuard } from "../durable-objects/replay-guard.js";

export default { fetch: app.fetch } satisfies ExportedHandler<Env>;

/**
 * Two test projects:
 * - "edge": Worker and Durable Object tests inside workerd (vitest pool
 *   workers) with the real local Durable Object storage, alarms, WebSockets,
 *   R2, KV and rate limiters declared in wrangler.toml;
 * - "node": the portable core, the native peer, the CLI and end-to-end tests,
 *   in Node with real sockets, files and processes.
 */
import { defineConfig } from "vitest/config";
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { TEST_ADMIN_SECRET, TEST_EDGE_SIGNING_KEY } from "./test/edge/secrets.js";

export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: { ADMIN_SECRET: TEST_ADMIN_SECRET, EDGE_SIGNING_KEY: TEST_EDGE_SIGNING_KEY },
            },
          }),
        ],
        test: { name: "edge", include: ["test/edge/**/*.test.ts"] },
      },
      {
        test: {
          name: "node",
          environment: "node",
          include: ["test/core/**/*.test.ts", "test/peer/**/*.test.ts", "test/cli/**/*.test.ts", "test/e2e/**/*.test.ts", "test/sim/**/*.test.ts", "test/swarm/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});

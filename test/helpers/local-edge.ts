/**
 * The real edge, locally, for Node tests: the Worker bundled from the current
 * sources exactly as `wrangler deploy` would bundle it (`wrangler deploy
 * --dry-run --outdir`), run by Miniflare (workerd) with the bindings of
 * wrangler.toml — real SQLite Durable Objects with alarms and hibernating
 * WebSockets, R2, KV, rate limiters — on 127.0.0.1 with a free port.
 *
 * Why Miniflare and not `wrangler dev`: it starts faster, needs no network,
 * and survives thousands of sockets (DESIGN "Decisions already measured").
 * The bundle is built once per test process and shared by every edge started
 * in it; each edge gets fresh in-memory storage, a random network key and a
 * random admin secret, so tests never see each other's state.
 *
 *   const edge = await startLocalEdge();
 *   const token = await edge.createJoinToken();
 *   …
 *   await edge.stop();
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { publicKeyFromSecret } from "../../src/core/identity.js";
import type { Role } from "../../src/core/roles.js";

const REPO_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const WRANGLER_TOML = join(REPO_ROOT, "wrangler.toml");
const WRANGLER_BIN = join(REPO_ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
/** Rate limits high enough that a test starting many peers from 127.0.0.1 is never throttled. */
const RELAXED_RATE_LIMIT = 100_000;

export interface LocalEdgeOptions {
  /** Extra or overriding Worker vars, e.g. `{ HEARTBEAT_INTERVAL_MS: "1000" }` (see src/core/params-env.ts). */
  vars?: Record<string, string>;
  /** Keep wrangler.toml's rate limits (default: relaxed, so tests starting many peers are not throttled). */
  realRateLimits?: boolean;
  /** Address to listen on. Default 127.0.0.1 (bench/swarm uses a network namespace's own address). */
  host?: string;
  /** Port to listen on. Default 0 (any free port). */
  port?: number;
  /**
   * Keep Durable Object, KV and R2 state on disk under this directory instead
   * of in memory, so that an edge started again with the same directory (and
   * the same secrets and port) is the same edge restarted
   * (restartable-edge.ts). Default: in memory, gone with the edge.
   */
  persistDir?: string;
  /** Reuse an admin secret (an edge restarted). Default: a fresh random one. */
  adminSecret?: string;
  /** Reuse the network's Ed25519 seed (an edge restarted). Default: a fresh random one. */
  networkSecretKey?: Uint8Array;
}

export interface JoinTokenOptions {
  /** Default: every role, publisher included. */
  roles?: Role[];
  regions?: string[];
  label?: string;
  /** null: never expires. Default: the edge's default (7 days). */
  ttlSeconds?: number | null;
}

export interface LocalEdge {
  /** Base URL, e.g. "http://127.0.0.1:41234". */
  url: string;
  adminSecret: string;
  /** The network's public key (what GET /v1/network publishes). */
  networkPublicKey: Uint8Array;
  /** The network's Ed25519 seed, for tests that must issue certificates themselves. */
  networkSecretKey: Uint8Array;
  /** A join token from the admin API. */
  createJoinToken(options?: JoinTokenOptions): Promise<string>;
  mf: Miniflare;
  stop(): Promise<void>;
}

let bundle: Promise<string> | null = null;
let workerOptionsCache: ReturnType<typeof unstable_getMiniflareWorkerOptions>["workerOptions"] | null = null;

/** Bundles the Worker once per process; resolves with the path of the entry module. */
export function buildEdgeBundle(): Promise<string> {
  bundle ??= (async () => {
    const outDir = mkdtempSync(join(tmpdir(), "peercloud-edge-bundle-"));
    process.once("exit", () => rmSync(outDir, { recursive: true, force: true }));
    try {
      await promisify(execFile)(process.execPath, [WRANGLER_BIN, "deploy", "--dry-run", "--outdir", outDir, "--config", WRANGLER_TOML], {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          CLOUDFLARE_CF_FETCH_ENABLED: "false",
          WRANGLER_SEND_METRICS: "false",
          WRANGLER_SEND_ERROR_REPORTS: "false",
          // The banner includes an update check, i.e. a network request.
          WRANGLER_HIDE_BANNER: "true",
          WRANGLER_LOG_PATH: outDir,
        },
        maxBuffer: 16 * 1024 * 1024,
      });
    } catch (err) {
      const { stdout, stderr } = err as { stdout?: string; stderr?: string };
      throw new Error(`building the edge Worker failed:\n${stderr ?? ""}${stdout ?? ""}`);
    }
    return join(outDir, "index.js");
  })();
  bundle.catch(() => (bundle = null));
  return bundle;
}

export async function startLocalEdge(options: LocalEdgeOptions = {}): Promise<LocalEdge> {
  const scriptPath = await buildEdgeBundle();
  workerOptionsCache ??= unstable_getMiniflareWorkerOptions(WRANGLER_TOML).workerOptions;
  const workerOptions = workerOptionsCache;
  const adminSecret = options.adminSecret ?? randomBytes(24).toString("base64url");
  const networkSecretKey = options.networkSecretKey ?? new Uint8Array(randomBytes(32));
  const persist = options.persistDir ? { durableObjectsPersist: join(options.persistDir, "do"), kvPersist: join(options.persistDir, "kv"), r2Persist: join(options.persistDir, "r2") } : {};
  const ratelimits = options.realRateLimits
    ? workerOptions.ratelimits
    : Object.fromEntries(Object.entries(workerOptions.ratelimits ?? {}).map(([name, rl]) => [name, { ...rl, simple: { ...rl.simple, limit: RELAXED_RATE_LIMIT } }]));
  const mf = new Miniflare({
    ...workerOptions,
    ratelimits,
    ...persist,
    name: "peercloud",
    modules: true,
    scriptPath,
    // Module names are paths relative to this root; the bundle lives outside the repository.
    modulesRoot: dirname(scriptPath),
    // The bundle's own modules only (no wrangler rules: it is one ES module).
    modulesRules: [{ type: "ESModule", include: ["**/*.js"] }],
    bindings: {
      ...workerOptions.bindings,
      ...options.vars,
      // Fresh secrets per edge (never the developer's .dev.vars).
      ADMIN_SECRET: adminSecret,
      EDGE_SIGNING_KEY: Buffer.from(networkSecretKey).toString("base64url"),
    },
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 0,
  });
  let url: string;
  try {
    url = (await mf.ready).origin;
  } catch (err) {
    await mf.dispose().catch(() => {});
    throw err;
  }

  const createJoinToken = async (tokenOptions: JoinTokenOptions = {}): Promise<string> => {
    const res = await fetch(`${url}/v1/admin/join-tokens`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminSecret}`, "content-type": "application/json" },
      body: JSON.stringify({
        label: tokenOptions.label ?? "test",
        roles: tokenOptions.roles ?? ["service", "client", "gateway", "publisher"],
        ...(tokenOptions.regions ? { regions: tokenOptions.regions } : {}),
        ...(tokenOptions.ttlSeconds !== undefined ? { ttlSeconds: tokenOptions.ttlSeconds } : {}),
      }),
    });
    const body = (await res.json()) as { token?: string; error?: { code: string; message: string } };
    if (res.status !== 201 || !body.token) throw new Error(`creating a join token failed: HTTP ${res.status} ${JSON.stringify(body.error ?? body)}`);
    return body.token;
  };

  let stopped: Promise<void> | null = null;
  return {
    url,
    adminSecret,
    networkPublicKey: publicKeyFromSecret(networkSecretKey),
    networkSecretKey,
    createJoinToken,
    mf,
    stop: () => (stopped ??= mf.dispose()),
  };
}

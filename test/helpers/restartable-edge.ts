/**
 * A local edge that can be restarted with its state kept: what a peer sees
 * when the edge's runtime goes away and comes back (a deploy, an eviction of
 * every Durable Object). Built on local-edge.ts with Durable Object, KV and
 * R2 state persisted under a directory; `restart()` disposes the Miniflare
 * instance (workerd exits: every WebSocket drops, every object is evicted,
 * alarms stop) and starts a new one on the same port with the same secrets
 * and the same storage, so peers reconnect to the same URL and find their
 * directory where it was.
 *
 *   const edge = await startRestartableEdge({ vars: { HEARTBEAT_INTERVAL_MS: "1000" } });
 *   const net = await startTestNetwork({ peers: 6, startEdge: () => Promise.resolve(edge) });
 *   const { downMs } = await edge.restart();
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Miniflare } from "miniflare";
import { startLocalEdge, type JoinTokenOptions, type LocalEdge, type LocalEdgeOptions } from "./local-edge.js";

export interface RestartableEdge extends LocalEdge {
  /** Stops the edge's runtime and starts it again on the same URL with the same state; resolves once it serves again. */
  restart(): Promise<{ downMs: number }>;
  /** Times restart() was called. */
  readonly restarts: number;
}

export async function startRestartableEdge(options: Omit<LocalEdgeOptions, "persistDir" | "adminSecret" | "networkSecretKey"> = {}): Promise<RestartableEdge> {
  const persistDir = mkdtempSync(join(tmpdir(), "peercloud-edge-state-"));
  let current: LocalEdge;
  try {
    current = await startLocalEdge({ ...options, persistDir });
  } catch (error) {
    rmSync(persistDir, { recursive: true, force: true });
    throw error;
  }
  const { adminSecret, networkSecretKey, networkPublicKey, url } = current;
  const port = Number(new URL(url).port);
  const host = new URL(url).hostname;
  let restarts = 0;
  let restarting: Promise<{ downMs: number }> | null = null;
  let stopped: Promise<void> | null = null;

  const restart = (): Promise<{ downMs: number }> => {
    if (stopped) return Promise.reject(new Error("the edge was stopped"));
    restarting ??= (async () => {
      const downAt = Date.now();
      await current.stop();
      // The port was just released; the new workerd binds it again (same URL in every peer's config).
      current = await startLocalEdge({ ...options, host, port, persistDir, adminSecret, networkSecretKey });
      if (current.url !== url) throw new Error(`the restarted edge serves ${current.url}, not ${url}`);
      restarts++;
      return { downMs: Date.now() - downAt };
    })().finally(() => (restarting = null));
    return restarting;
  };

  return {
    url,
    adminSecret,
    networkPublicKey,
    networkSecretKey,
    get mf(): Miniflare {
      return current.mf;
    },
    get restarts() {
      return restarts;
    },
    createJoinToken: (tokenOptions?: JoinTokenOptions) => current.createJoinToken(tokenOptions),
    restart,
    stop: () =>
      (stopped ??= (async () => {
        await restarting?.catch(() => {});
        await current.stop();
        rmSync(persistDir, { recursive: true, force: true });
      })()),
  };
}

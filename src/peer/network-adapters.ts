/**
 * Adapters from the network clients to the small interfaces put and get
 * depend on (sources.ts): provider lookups and replica placement through the
 * region directory, chunk transfers through the TransferClient, the cold
 * store through the edge's R2 routes.
 *
 * The directory is reached two ways. The daemon has its WebSocket
 * (DirectoryConnection) and uses it while it is open; when it is not (still
 * connecting, or reconnecting after a drop) or a request over it fails, the
 * same question goes to the edge's HTTP routes (EdgeClient), so a put or get
 * never waits for a reconnect. A one-shot CLI command has only HTTP. Lookups
 * over the socket see this region; an empty answer is asked again over HTTP
 * across all regions before the download falls back to R2.
 */
import type { PeerInfo, ProviderInfo } from "../core/messages.js";
import type { DirectoryConnection } from "./directory-connection.js";
import type { EdgeClient } from "./edge-client.js";
import type { NetworkDeps } from "./operations.js";
import type { ChunkSource, ColdStore, ProviderDirectory, ReplicaTarget, ReplicaTargets } from "./sources.js";
import type { TransferClient } from "./transfer-client.js";

/** The directory questions put, get and unpin ask. */
export interface DirectoryApi {
  findProviders(cid: string, signal: AbortSignal): Promise<ProviderInfo[]>;
  place(count: number, exclude: string[], sizeBytes: number): Promise<PeerInfo[]>;
  pin(cids: string[], replicas: number, sizeBytes: number[]): Promise<void>;
}

/** The edge's HTTP routes for this peer's region. */
export function httpDirectory(edge: EdgeClient, region: string): DirectoryApi {
  return {
    findProviders: (cid, signal) => edge.findProviders(region, cid, { signal, scope: "all" }),
    place: (count, exclude, sizeBytes) => edge.place(region, count, exclude, sizeBytes),
    pin: async (cids, replicas, sizeBytes) => {
      await edge.pin(region, cids, replicas, sizeBytes);
    },
  };
}

/** The WebSocket while it is open, else (or when it fails) HTTP. */
export function socketDirectory(conn: DirectoryConnection, http: DirectoryApi): DirectoryApi {
  const viaSocket = async <T>(ask: () => Promise<T>, fallback: () => Promise<T>): Promise<T> => {
    if (conn.state !== "open") return fallback();
    try {
      return await ask();
    } catch {
      return fallback();
    }
  };
  return {
    findProviders: async (cid, signal) => {
      const local = await viaSocket(() => abortable(conn.findProviders(cid), signal), () => http.findProviders(cid, signal));
      return local.length > 0 ? local : http.findProviders(cid, signal).catch(() => local);
    },
    place: (count, exclude, sizeBytes) => viaSocket(() => conn.place(count, exclude, sizeBytes), () => http.place(count, exclude, sizeBytes)),
    pin: (cids, replicas, sizeBytes) => viaSocket(() => conn.pin(cids, replicas, sizeBytes), () => http.pin(cids, replicas, sizeBytes)),
  };
}

export interface NetworkDepsInput {
  directory: DirectoryApi;
  transfer: TransferClient;
  edge: EdgeClient;
  /** Never offered as a provider or a replica target of itself. */
  selfNodeId: string;
}

/** ProviderDirectory, ReplicaTargets and ColdStore over the clients (no Announcer: see the daemon). */
export function networkDeps({ directory, transfer, edge, selfNodeId }: NetworkDepsInput): NetworkDeps {
  const providers: ProviderDirectory = {
    async providers(cid, signal) {
      const found = await directory.findProviders(cid, signal);
      const sources: ChunkSource[] = [];
      for (const info of found) {
        const address = transferAddress(info);
        if (info.nodeId === selfNodeId || info.state === "dead" || !address) continue;
        sources.push({ id: info.nodeId, kind: "peer", fetch: (c, s) => transfer.getChunk(address, c, { signal: s }) });
      }
      return sources;
    },
  };
  const targets: ReplicaTargets = {
    async place(count, exclude, sizeBytes) {
      const nodes = await directory.place(count, [...new Set([...exclude, selfNodeId])], sizeBytes);
      const chosen: ReplicaTarget[] = [];
      for (const info of nodes) {
        const address = transferAddress(info);
        if (info.nodeId === selfNodeId || !address) continue;
        chosen.push({
          id: info.nodeId,
          push: async (cid, sealed) => {
            await transfer.putChunk(address, cid, sealed);
          },
          has: async (cid) => (await transfer.headChunk(address, cid)) !== null,
        });
      }
      return chosen;
    },
    pin: (cids, replicas, sizes) => directory.pin(cids, replicas, sizes),
  };
  const cold: ColdStore = {
    async put(cid, sealed) {
      await edge.putChunkToR2(cid, sealed);
    },
    get: (cid, signal) => edge.getChunkFromR2(cid, { signal }),
    has: async (cid) => (await edge.headChunkInR2(cid)) !== null,
  };
  return { providers, targets, cold };
}

/** The first address the TransferClient speaks (http/https). */
export function transferAddress(info: Pick<PeerInfo, "addresses">): string | null {
  return info.addresses.find((a) => a.startsWith("http://") || a.startsWith("https://")) ?? null;
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

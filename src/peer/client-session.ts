/**
 * The one-shot session: `put`/`get`/`status`/`ls`/`pin`/`unpin` run in this
 * process when no daemon runs in the home (the CLI without `peer start`, or
 * an app through the library API).
 *
 * It takes the home's lock (peer.pid) for its lifetime, because two
 * processes must never open one chunk store, opens the store, and talks to
 * the network over plain HTTP: lookups, placement and pins through the
 * edge (EdgeClient), chunk transfers to and from peers (TransferClient), R2
 * through the edge. It announces nothing: without a daemon this peer serves
 * no one, so claiming to provide chunks would only send downloaders to a
 * closed port. The chunks it stores are announced by the daemon's full
 * inventory when `peer start` next runs.
 */
import { ChunkStore } from "./chunk-store.js";
import { EdgeClient } from "./edge-client.js";
import { PeerHome, type PeerConfig } from "./home.js";
import { Library } from "./library.js";
import { httpDirectory, networkDeps } from "./network-adapters.js";
import { LocalOperations, type NetworkDeps } from "./operations.js";
import { TransferClient } from "./transfer-client.js";

export interface ClientSessionOptions {
  /** Without the network: put stores locally only, get reads only the local store (tests, offline use). */
  offline?: boolean;
}

export class ClientSession extends LocalOperations {
  private constructor(
    private readonly home: PeerHome,
    private readonly store: ChunkStore,
    private readonly transfer: TransferClient | null,
    ctx: ConstructorParameters<typeof LocalOperations>[0],
  ) {
    super(ctx);
  }

  /** Opens `home` in-process: config and identity first (nothing is created for a wrong path), then the lock and the store. */
  static async open(home: PeerHome, options: ClientSessionOptions = {}): Promise<ClientSession> {
    const { config, identity } = await home.load();
    await home.acquirePidFile();
    let store: ChunkStore | null = null;
    try {
      store = await ChunkStore.open(home.storeDir, { limitBytes: config.storageLimitBytes });
      let network: NetworkDeps = {};
      let transfer: TransferClient | null = null;
      if (!options.offline) {
        const edge = new EdgeClient({ edgeUrl: config.edgeUrl, identity, certificate: config.certificate });
        transfer = new TransferClient({ secretKey: identity.secretKey, certificate: config.certificate });
        network = networkDeps({ directory: httpDirectory(edge, config.region), transfer, edge, selfNodeId: config.nodeId });
      }
      const fixed: PeerConfig = config;
      return new ClientSession(home, store, transfer, { home, config: () => fixed, store, library: new Library(home.dir), network });
    } catch (error) {
      await store?.close().catch(() => {});
      await home.removeRuntimeFiles();
      throw error;
    }
  }

  override async close(): Promise<void> {
    this.transfer?.close();
    await this.store.close();
    await this.home.removeRuntimeFiles();
  }
}

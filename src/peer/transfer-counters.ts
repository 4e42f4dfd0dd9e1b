/**
 * What the transfer server has done, for `peercloud status`, metrics and the
 * load the daemon reports to its region directory. Plain counters that only
 * grow (except `activeTransfers`), so a reader can turn two snapshots into
 * rates. The per-peer map is bounded: a peer that asks for one chunk and
 * leaves must not grow this process's memory forever.
 */

export interface TransferStats {
  requests: number;
  sessionsOpened: number;
  chunksServed: number;
  /** Bytes of the chunks served whole. */
  bytesServed: number;
  /** Of chunksServed, those sent while this peer was still receiving them (relayed cut-through to a swarm, arriving-chunks.ts). */
  chunksRelayed: number;
  /** Chunk response bytes sent so far, counted as they stream (cut-off responses included): what the capacity meter reads. */
  bytesSent: number;
  chunksReceived: number;
  /** Chunk bytes received by PUTs so far, counted as they arrive (cut-off and rejected bodies included). */
  bytesReceived: number;
  /** GETs streaming and PUTs receiving right now. */
  activeTransfers: number;
  /** Failed requests by error code (e.g. chunk_not_found, bad_session, aborted; sent_to_swarm: refusals of super-seed.ts). */
  errors: Record<string, number>;
  /** Bytes served to each peer (node ID), for the most recent `maxPeers` peers served. */
  servedBytesByPeer: Record<string, number>;
}

export class TransferCounters {
  requests = 0;
  sessionsOpened = 0;
  chunksServed = 0;
  bytesServed = 0;
  chunksRelayed = 0;
  bytesSent = 0;
  chunksReceived = 0;
  bytesReceived = 0;
  activeTransfers = 0;
  private readonly errors = new Map<string, number>();
  private readonly byPeer = new Map<string, number>();

  constructor(private readonly maxPeers = 4096) {}

  served(nodeId: string, bytes: number): void {
    this.chunksServed++;
    this.bytesServed += bytes;
    const before = this.byPeer.get(nodeId) ?? 0;
    // Re-insert so the map stays in least-recently-served order and the oldest entry is the one dropped.
    this.byPeer.delete(nodeId);
    this.byPeer.set(nodeId, before + bytes);
    if (this.byPeer.size > this.maxPeers) this.byPeer.delete(this.byPeer.keys().next().value as string);
  }

  error(code: string): void {
    // Codes come from our own error classes, never from remote input, so this map stays small.
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  snapshot(): TransferStats {
    return {
      requests: this.requests,
      sessionsOpened: this.sessionsOpened,
      chunksServed: this.chunksServed,
      bytesServed: this.bytesServed,
      chunksRelayed: this.chunksRelayed,
      bytesSent: this.bytesSent,
      chunksReceived: this.chunksReceived,
      bytesReceived: this.bytesReceived,
      activeTransfers: this.activeTransfers,
      errors: Object.fromEntries(this.errors),
      servedBytesByPeer: Object.fromEntries(this.byPeer),
    };
  }
}

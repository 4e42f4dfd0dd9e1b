/**
 * The minimum distribution time of a file of F bytes from one server to N
 * peers (Kumar & Ross, "Peer-Assisted File Distribution: The Minimum
 * Distribution Time", IEEE HotWeb 2006):
 *
 *   T_min = max( F / u_s,  F / d_min,  N·F / (u_s + Σ u_i) )
 *
 * u_s: the server's upload, u_i: peer i's upload, d_min: the slowest peer's
 * download. The first term: the server must send every byte at least once;
 * the second: the slowest peer must receive all of it; the third: N·F bytes
 * must be uploaded in total by everyone together. The bound is achievable
 * with a fluid model, so a real swarm can approach it but never beat it.
 *
 * Rates here are payload rates: the configured line rates × the TCP payload
 * share of what HTB counts (shaping.ts payloadShare()). The same topology's
 * central-server time — every peer served by the server alone — is
 * max(N·F / u_s, F / d_min): the ideal of the HTTP baseline.
 */

export interface BoundInput {
  fileBytes: number;
  sourceUpMbit: number;
  peerUpMbit: readonly number[];
  peerDownMbit: readonly number[];
  /** Payload bytes per line-rate byte (0–1). */
  payloadShare: number;
}

export interface DistributionBound {
  tMinSeconds: number;
  terms: {
    /** F / u_s */
    sourceUploadSeconds: number;
    /** F / d_min */
    slowestDownloadSeconds: number;
    /** N·F / (u_s + Σ u_i) */
    aggregateUploadSeconds: number;
  };
  binding: "source upload" | "slowest download" | "aggregate upload";
  /** max(N·F / u_s, F / d_min): the central-server model's own minimum. */
  centralServerSeconds: number;
}

function payloadBytesPerS(mbit: number, share: number): number {
  return (mbit * 1e6 * share) / 8;
}

export function kumarRossBound(input: BoundInput): DistributionBound {
  const n = input.peerUpMbit.length;
  if (n === 0 || input.peerDownMbit.length !== n) throw new RangeError("one upload and one download rate per peer");
  const us = payloadBytesPerS(input.sourceUpMbit, input.payloadShare);
  const ui = input.peerUpMbit.map((r) => payloadBytesPerS(r, input.payloadShare));
  const dmin = Math.min(...input.peerDownMbit.map((r) => payloadBytesPerS(r, input.payloadShare)));
  const F = input.fileBytes;
  const terms = {
    sourceUploadSeconds: F / us,
    slowestDownloadSeconds: F / dmin,
    aggregateUploadSeconds: (n * F) / (us + ui.reduce((a, b) => a + b, 0)),
  };
  const tMinSeconds = Math.max(terms.sourceUploadSeconds, terms.slowestDownloadSeconds, terms.aggregateUploadSeconds);
  const binding = tMinSeconds === terms.sourceUploadSeconds ? "source upload" : tMinSeconds === terms.slowestDownloadSeconds ? "slowest download" : "aggregate upload";
  return { tMinSeconds, terms, binding, centralServerSeconds: Math.max((n * F) / us, F / dmin) };
}

/**
 * Streaming output (`get -o - --stream`): chunks arrive in any order, bytes
 * leave strictly in file order. A reorder buffer holds decrypted chunks
 * until every earlier byte is out; its size is bounded by the scheduler's
 * window, because a chunk's window slot is freed only when `deliver`
 * resolves — when the chunk has been written to the output — and the
 * ordered scheduler always lets the head chunk start (chunk-scheduler.ts).
 * Backpressure from the output (a slow pipe, a player reading at playback
 * rate) therefore pauses fetching instead of growing memory.
 *
 * A chunk that occurs again later in the file (same CID) is delivered once;
 * its later occurrences are read back from the local store, where the fetch
 * loop cached it. The whole-file SHA-256 is computed as bytes leave and
 * checked at the end: bytes already written cannot be recalled, so a
 * mismatch is reported as an error (non-zero exit), never silently.
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { PeercloudError } from "../core/errors.js";
import { FileHashMismatchError } from "./part-file.js";

export interface EmitPosition {
  /** The piece (distinct chunk) at this position. */
  piece: number;
  cid: string;
}

export type Decrypt = (position: number, sealed: Uint8Array) => Uint8Array;

export class OrderedEmitter {
  private readonly buffered = new Map<number, { plaintext: Uint8Array; resolve: () => void; reject: (e: unknown) => void }>();
  /** First position of each piece (a later position re-reads the store). */
  private readonly firstPosition = new Map<number, number>();
  private readonly hash = createHash("sha256");
  private cursor = 0;
  private pumping: Promise<void> | null = null;
  private error: unknown = null;
  /** An output error (EPIPE when the reader went away) must not become an unhandled 'error' event. */
  private readonly onOutputError = (error: unknown) => this.failWith(error);
  bytesEmitted = 0;

  constructor(
    private readonly output: NodeJS.WritableStream,
    private readonly positions: readonly EmitPosition[],
    /** The sealed bytes of an already delivered piece, again (from the local store), or null. */
    private readonly readAgain: (cid: string) => Promise<Uint8Array | null>,
    private readonly decrypt: Decrypt,
    private readonly onEmitted: (positionIndex: number, bytes: number) => void = () => {},
  ) {
    positions.forEach((p, i) => {
      if (!this.firstPosition.has(p.piece)) this.firstPosition.set(p.piece, i);
    });
    output.on("error", this.onOutputError);
  }

  /** Stops listening to the output (call once the download ended, either way). */
  close(): void {
    this.output.removeListener("error", this.onOutputError);
    if (this.error === null) this.failWith(new PeercloudError("stream_closed", "the stream was closed", 500));
  }

  /**
   * Hands over a verified piece; resolves once its first occurrence has been
   * written out. Rejects when `signal` aborts first (the download is ending
   * and an earlier piece will never come).
   */
  deliver(piece: number, sealed: Uint8Array, signal?: AbortSignal): Promise<void> {
    if (this.error !== null) return Promise.reject(this.error);
    if (signal?.aborted) return Promise.reject(signal.reason);
    const plaintext = this.decrypt(this.firstPosition.get(piece)!, sealed);
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        if (this.buffered.get(piece)?.plaintext !== plaintext) return;
        this.buffered.delete(piece);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const done = () => signal?.removeEventListener("abort", onAbort);
      this.buffered.set(piece, {
        plaintext,
        resolve: () => (done(), resolve()),
        reject: (e) => (done(), reject(e)),
      });
      this.kick();
    });
  }

  /** Waits until every position is out, then checks the whole-file hash. */
  async finish(sha256Hex: string): Promise<void> {
    this.kick();
    while (this.pumping) await this.pumping;
    if (this.error !== null) throw this.error;
    if (this.cursor < this.positions.length) throw new Error(`OrderedEmitter.finish: position ${this.cursor} was never delivered`);
    const actual = this.hash.digest("hex");
    if (actual !== sha256Hex) throw new FileHashMismatchError("the output stream", sha256Hex, actual);
  }

  private kick(): void {
    if (this.pumping || this.error !== null) return;
    this.pumping = this.pump()
      .catch((error) => this.failWith(error))
      .finally(() => {
        this.pumping = null;
        // A delivery may have arrived while the last write was finishing.
        if (this.error === null && this.buffered.has(this.positions[this.cursor]?.piece)) this.kick();
      });
  }

  private failWith(error: unknown): void {
    if (this.error === null) this.error = error;
    for (const entry of this.buffered.values()) entry.reject(this.error);
    this.buffered.clear();
  }

  private async pump(): Promise<void> {
    while (this.cursor < this.positions.length) {
      const position = this.positions[this.cursor];
      let bytes: Uint8Array;
      if (this.firstPosition.get(position.piece)! < this.cursor) {
        const sealed = await this.readAgain(position.cid);
        if (!sealed) throw new PeercloudError("chunk_evicted", `chunk ${position.cid} left the local store before its repeat at position ${this.cursor} was streamed`, 507);
        bytes = this.decrypt(this.cursor, sealed);
      } else {
        const entry = this.buffered.get(position.piece);
        if (!entry) return;
        this.buffered.delete(position.piece);
        bytes = entry.plaintext;
        await this.write(bytes);
        entry.resolve();
        this.advance(bytes.length);
        continue;
      }
      await this.write(bytes);
      this.advance(bytes.length);
    }
  }

  private advance(bytes: number): void {
    this.bytesEmitted += bytes;
    this.onEmitted(this.cursor, bytes);
    this.cursor++;
  }

  private async write(bytes: Uint8Array): Promise<void> {
    if (this.error !== null) throw this.error;
    this.hash.update(bytes);
    if (bytes.length === 0) return;
    if (!this.output.write(bytes)) await once(this.output, "drain");
  }
}

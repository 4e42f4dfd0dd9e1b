/**
 * Chunk sealing on worker threads, for ingest.
 *
 * Why: sealing (SHA-256 of the plaintext, AES-256-GCM, SHA-256 of the
 * ciphertext) is the bulk of ingest's CPU, and node:crypto (like the seal
 * addon) runs it on the calling thread. Measured on this project's 2-core
 * machine, one thread doing chunking, the whole-file hash and sealing
 * reaches ~0.37 of the raw AES-GCM + SHA-256 baseline; with sealing on
 * workers and the main thread left to read, chunk and write, the work
 * overlaps across cores.
 *
 * How:
 * - `size` seal workers (default `os.availableParallelism()`) and one
 *   file-hash worker (below), each running seal-worker.ts through tsx
 *   (ts-worker.js). No core is kept for the main thread (reads, chunk
 *   boundaries, store calls: about an eighth of ingest's CPU): the
 *   scheduler runs whichever thread has work, and every thread having
 *   work queued is what keeps both cores of a small machine busy.
 * - `sealInto()` is ingest's path (ingest-file.ts): plaintext and output
 *   are views of shared memory (ingest-arena.ts), which the worker reads and
 *   writes in place (seal-into.ts), so a chunk costs no copy, no transfer
 *   and no new buffer; only keys, CIDs and hashes are messages. With
 *   `spoolDir` (the chunk store's), the worker also writes the sealed chunk
 *   to its temp file in the store (spoolChunkSync, pending-files.ts) with
 *   synchronous calls, which the store then adopts: the write costs the main
 *   thread nothing, and no async round trips.
 * - `seal()` copies the plaintext once into a buffer with room for the tag
 *   and transfers it; the worker seals into that same buffer and transfers
 *   it back as the sealed chunk, so a chunk costs one allocation, not three
 *   (fresh memory is what costs here: page faults, then GC). A caller that
 *   owns a buffer outright can transfer it instead of having it copied.
 * - Tasks go to the least-loaded ready worker. Until a worker is ready (they
 *   take a few hundred ms to load), or if none can start at all (no tsx, a
 *   sandbox without threads), chunks are sealed in the calling thread with
 *   the very same function: slower, never wrong, never stuck.
 * - A worker that dies after it was ready (a crash, an abort, OOM) rejects
 *   the tasks it held with SealWorkerError and breaks the pool: every later
 *   `seal()` rejects too, so an ingest fails promptly instead of hanging.
 * - `openFileHash()` is ingest's whole-file SHA-256 (the manifest's), fed
 *   slab by slab on one more worker of its own, which seals nothing.
 *   SHA-256 is sequential, so one thread must do it; on the main thread it
 *   was a sixth of ingest's CPU, spent one 4 MiB slab at a time, during
 *   which the seal workers' queues ran dry and a core sat idle. Moved off,
 *   the main thread only reads, finds boundaries and dispatches, answers
 *   the workers at once, and the cores stay busy: measured on this
 *   project's 2-core VM, ingest to tmpfs went from ~496 to ~531 MB/s (3
 *   interleaved pairs of runs). With that worker not (yet) ready, a stream hashes in the calling
 *   thread, all of it, from its first byte to its digest.
 * - Backpressure is the caller's (ingest-file.ts keeps at most 2 × size + 2
 *   chunks in flight); the pool itself queues in the workers' ports.
 * - Idle workers are unref'd: a pool never keeps a process alive.
 *
 * `acquireSealPool()` shares one pool per process between puts and closes
 * it after a quiet period, so the worker start-up is paid once per burst of
 * work, not per file.
 */
import { createHash } from "node:crypto";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { CHUNK_TAG_BYTES, type ChunkKeying, type SealedChunk } from "../core/chunk-cipher.js";
import { PeercloudError } from "../core/errors.js";
import { sealChunkNative } from "./native-chunk-cipher.js";
import type { SpoolOutcome } from "./pending-files.js";
import { sealChunkInto, type SealedInto } from "./seal-into.js";

/**
 * main → worker: either the plaintext is the first `lengthBytes` of `buffer`
 * (transferred), or `plaintext` and `output` are views of shared memory and
 * the sealed chunk goes into `output` (sealChunkInto), and from there to a
 * temp file under `spoolDir` when given (spoolChunkSync).
 */
export type SealRequest =
  { id: number; buffer: ArrayBuffer; lengthBytes: number; keying: ChunkKeying } | { id: number; plaintext: Uint8Array; output: Uint8Array; keying: ChunkKeying; spoolDir?: string };

/** main → the file-hash worker: add `bytes` to stream `stream` (begun by its first bytes), or end it, replying its SHA-256 (`digest`) or nothing (`discard`). */
export type HashRequest = { id: number; stream: number; bytes: Uint8Array } | { id: number; stream: number; end: "digest" | "discard" };

/** A SHA-256 computed over bytes given in order, on the pool's file-hash worker (or in the calling thread, see openFileHash). */
export interface FileHash {
  /** Adds `bytes` after everything given before. A view of shared memory is read in place, so leave it untouched until this settles; other bytes are copied to the worker (with their whole ArrayBuffer). */
  update(bytes: Uint8Array): Promise<void>;
  /** The SHA-256 of all the bytes given; ends the stream. */
  digest(): Promise<Uint8Array>;
  /** Ends an unfinished stream without a digest (what a failed ingest does, so the worker forgets it). No-op once ended. */
  discard(): void;
}

/** What `sealInto` resolves to: the sealed chunk's particulars, and what became of its temp file when one was asked for. */
export interface SealedIntoResult extends SealedInto {
  /** Present when `spoolDir` was given and a worker sealed the chunk (sealing in the calling thread writes no file). */
  spool?: SpoolOutcome;
}

/** worker → main: a sealed chunk (or, for a shared-memory request, what sealing it into `output` returned), a hash stream's step (with its digest at the end), or the error either threw. */
export type SealReply = ({ id: number } & SealedChunk) | ({ id: number } & SealedIntoResult) | { id: number; digest?: Uint8Array } | { id: number; error: { name: string; message: string } };

/** A seal worker died with chunks in hand; the pool is unusable from then on. */
export class SealWorkerError extends PeercloudError {
  constructor(message: string) {
    super("seal_worker_failed", message, 500);
    this.name = "SealWorkerError";
  }
}

export interface SealPoolOptions {
  /** Worker threads. Default os.availableParallelism(). */
  size?: number;
  /** The TypeScript module each worker runs. Default ./seal-worker.ts (tests pass misbehaving ones). */
  workerModule?: URL;
  /** Start the file-hash worker (one more thread). Default true when `size` > 0. */
  fileHashWorker?: boolean;
}

export interface SealPoolStats {
  workers: number;
  /** Workers that loaded and are serving. */
  ready: number;
  /** Workers that could not start (their share is sealed in-thread). */
  failedToStart: number;
  /** The file-hash worker is serving (openFileHash hashes there, not in the calling thread). */
  fileHashReady: boolean;
  sealedInWorkers: number;
  sealedInThread: number;
}

interface Task {
  resolve(result: SealReply): void;
  reject(error: unknown): void;
}

interface Slot {
  /** Seal workers take chunks (least loaded first); the file-hash worker takes hash streams only. */
  role: "seal" | "file-hash";
  worker: Worker;
  state: "starting" | "ready" | "failed" | "exited";
  tasks: Map<number, Task>;
  lastError?: Error;
}

const DEFAULT_WORKER_MODULE = new URL("./seal-worker.ts", import.meta.url);
const BOOTSTRAP = new URL("./ts-worker.js", import.meta.url);

export class SealPool {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private readonly fileHashSlot: Slot | null = null;
  private readonly settledStart: Promise<number>;
  private nextId = 0;
  private nextStream = 0;
  private broken: SealWorkerError | null = null;
  private closed = false;
  private sealedInWorkers = 0;
  private sealedInThread = 0;

  constructor(options: SealPoolOptions = {}) {
    const size = options.size ?? availableParallelism();
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`SealPool: size must be a non-negative integer, got ${size}`);
    this.size = size;
    const moduleUrl = (options.workerModule ?? DEFAULT_WORKER_MODULE).href;
    const starts: Promise<void>[] = [];
    const start = (role: Slot["role"], name: string): Slot | null => {
      let worker: Worker;
      try {
        worker = new Worker(BOOTSTRAP, { workerData: { moduleUrl } });
      } catch {
        return null; // threads unavailable: that share of the work stays in the calling thread
      }
      worker.unref();
      const slot: Slot = { role, worker, state: "starting", tasks: new Map() };
      this.slots.push(slot);
      starts.push(new Promise<void>((started) => this.wire(slot, name, started)));
      return slot;
    };
    for (let i = 0; i < size; i++) start("seal", `seal worker ${i}`);
    if (size > 0 && options.fileHashWorker !== false) this.fileHashSlot = start("file-hash", "the file-hash worker");
    this.settledStart = Promise.all(starts).then(() => this.sealSlots().filter((s) => s.state === "ready").length);
  }

  /** Resolves once every worker is ready or has failed to start, with the number of seal workers ready. */
  whenStarted(): Promise<number> {
    return this.settledStart;
  }

  /**
   * Seals `plaintext` exactly as sealChunkNative does. By default the bytes
   * are copied into a new buffer with room for the tag, which the worker
   * seals in place and hands back as `sealed` (one allocation per chunk).
   * With `transfer`, the caller gives up `plaintext.buffer` instead (no
   * copy; every view of that buffer is emptied): the view must start at
   * its offset 0, and the worker seals in place if the buffer has
   * CHUNK_TAG_BYTES to spare after it.
   */
  seal(plaintext: Uint8Array, keying: ChunkKeying, options: { transfer?: boolean } = {}): Promise<SealedChunk> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    const slot = this.pick();
    if (!slot) {
      try {
        const sealed = sealChunkNative(plaintext, keying);
        this.sealedInThread++;
        return Promise.resolve(sealed);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (!(plaintext instanceof Uint8Array)) return Promise.reject(new TypeError("plaintext: expected a Uint8Array"));
    let buffer: ArrayBuffer;
    if (options.transfer) {
      if (plaintext.byteOffset !== 0 || !(plaintext.buffer instanceof ArrayBuffer)) return Promise.reject(new RangeError("seal: a transferred plaintext must start at offset 0 of an ArrayBuffer"));
      buffer = plaintext.buffer;
    } else {
      // Not zero-filled: the plaintext overwrites the start, the worker the rest.
      const copy = Buffer.allocUnsafeSlow(plaintext.length + CHUNK_TAG_BYTES);
      copy.set(plaintext);
      buffer = copy.buffer;
    }
    return this.dispatch<SealedChunk>(slot, { id: this.nextId++, buffer, lengthBytes: plaintext.length, keying }, [buffer]);
  }

  /**
   * Seals `plaintext` into output[0, plaintext.length + CHUNK_TAG_BYTES)
   * exactly as sealChunkInto (seal-into.ts) does, on a worker: both must be
   * views of SharedArrayBuffers (ingest-arena.ts), which the worker reads
   * and writes in place, so nothing is copied or transferred. Neither may
   * be touched until the promise settles. With no worker ready it seals
   * in the calling thread, with the same result.
   *
   * With `spoolDir` (a ChunkStore's `spoolDir`), the worker then writes the
   * sealed chunk to a temp file there (spoolChunkSync) and `spool` says what
   * became of it; a `spooled` file belongs to the caller, who hands it to
   * ChunkStore.adoptTrusted or removes it. Sealing in the calling thread
   * writes no file (no `spool`): synchronous writes would block it.
   */
  sealInto(plaintext: Uint8Array, output: Uint8Array, keying: ChunkKeying, options: { spoolDir?: string } = {}): Promise<SealedIntoResult> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    if (!(plaintext instanceof Uint8Array) || !(output instanceof Uint8Array)) return Promise.reject(new TypeError("sealInto: plaintext and output must be Uint8Arrays"));
    if (!(plaintext.buffer instanceof SharedArrayBuffer) || !(output.buffer instanceof SharedArrayBuffer)) {
      return Promise.reject(new RangeError("sealInto: plaintext and output must be views of SharedArrayBuffers"));
    }
    const slot = this.pick();
    if (!slot) {
      try {
        const sealed = sealChunkInto(plaintext, output, keying);
        this.sealedInThread++;
        return Promise.resolve(sealed);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const request: SealRequest = { id: this.nextId++, plaintext, output, keying };
    if (options.spoolDir !== undefined) request.spoolDir = options.spoolDir;
    return this.dispatch<SealedIntoResult>(slot, request, []);
  }

  /**
   * A whole-file SHA-256 fed in order (see the module comment). On the
   * file-hash worker when it is ready now, else in the calling thread for
   * the stream's whole life (a stream never moves between threads). On the
   * worker, a stream fails like a chunk: if the worker dies, every pending
   * and later call rejects with SealWorkerError.
   */
  openFileHash(): FileHash {
    const slot = this.fileHashSlot;
    if (!slot || slot.state !== "ready" || this.broken || this.closed) return inThreadFileHash();
    const stream = this.nextStream++;
    const send = <T>(request: HashRequest): Promise<T> => {
      const refused = this.refusal();
      if (refused) return Promise.reject(refused);
      return this.dispatch<T>(slot, request, []);
    };
    return fileHashOver({
      add: (bytes) => send<unknown>({ id: this.nextId++, stream, bytes }).then(() => {}),
      finish: () => send<{ digest: Uint8Array }>({ id: this.nextId++, stream, end: "digest" }).then((reply) => reply.digest),
      drop: () => void send<unknown>({ id: this.nextId++, stream, end: "discard" }).catch(() => {}), // a dead worker has forgotten it anyway
    });
  }

  private dispatch<T>(slot: Slot, request: SealRequest | HashRequest, transfer: ArrayBuffer[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      slot.tasks.set(request.id, { resolve: resolve as Task["resolve"], reject });
      if (slot.tasks.size === 1) slot.worker.ref();
      slot.worker.postMessage(request, transfer);
    });
  }

  stats(): SealPoolStats {
    const seal = this.sealSlots();
    return {
      workers: this.size,
      ready: seal.filter((s) => s.state === "ready").length,
      failedToStart: this.size - seal.filter((s) => s.state !== "failed").length,
      fileHashReady: this.fileHashSlot?.state === "ready",
      sealedInWorkers: this.sealedInWorkers,
      sealedInThread: this.sealedInThread,
    };
  }

  get isBroken(): boolean {
    return this.broken !== null;
  }

  /** Stops the workers; chunks still in their hands are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
    for (const slot of this.slots) this.rejectAll(slot, new SealWorkerError("the seal pool was closed with chunks in flight"));
  }

  /** Why the pool takes no more work (broken or closed), or null. */
  private refusal(): SealWorkerError | null {
    return this.broken ?? (this.closed ? new SealWorkerError("the seal pool is closed") : null);
  }

  private sealSlots(): Slot[] {
    return this.slots.filter((s) => s.role === "seal");
  }

  /** The least-loaded ready seal worker, or null when none is ready. */
  private pick(): Slot | null {
    let best: Slot | null = null;
    for (const slot of this.slots) if (slot.role === "seal" && slot.state === "ready" && (!best || slot.tasks.size < best.tasks.size)) best = slot;
    return best;
  }

  private wire(slot: Slot, name: string, started: () => void): void {
    const { worker } = slot;
    worker.on("message", (message: SealReply | { ready: true }) => {
      if ("ready" in message) {
        slot.state = "ready";
        return started();
      }
      const task = slot.tasks.get(message.id);
      if (!task) return;
      slot.tasks.delete(message.id);
      if (slot.tasks.size === 0) worker.unref();
      if ("error" in message) return task.reject(rebuildError(message.error));
      if (slot.role === "seal") this.sealedInWorkers++;
      task.resolve(message);
    });
    worker.on("error", (error) => {
      slot.lastError = error;
    });
    worker.on("exit", (code) => {
      const wasReady = slot.state === "ready";
      slot.state = wasReady ? "exited" : "failed";
      if (!wasReady) return started();
      if (this.closed) return;
      const cause = slot.lastError ? `: ${slot.lastError.message}` : "";
      this.broken ??= new SealWorkerError(`${name} exited with code ${code}${cause}`);
      this.rejectAll(slot, this.broken);
    });
  }

  private rejectAll(slot: Slot, error: Error): void {
    for (const task of slot.tasks.values()) task.reject(error);
    slot.tasks.clear();
  }
}

/** How long a shared pool with no users keeps its workers. */
const SHARED_POOL_IDLE_MS = 30_000;
let shared: { pool: SealPool; users: number; idleTimer: NodeJS.Timeout | null } | null = null;

/**
 * The process's shared pool (started on first use), and a `release` to call
 * when done with it. A broken pool is replaced; an unused one closes after
 * SHARED_POOL_IDLE_MS.
 */
export function acquireSealPool(): { pool: SealPool; release: () => void } {
  if (shared?.pool.isBroken) {
    void shared.pool.close();
    if (shared.idleTimer) clearTimeout(shared.idleTimer);
    shared = null;
  }
  const entry = (shared ??= { pool: new SealPool(), users: 0, idleTimer: null });
  entry.users++;
  if (entry.idleTimer) clearTimeout(entry.idleTimer);
  entry.idleTimer = null;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    if (--entry.users > 0) return;
    if (entry.pool.isBroken || shared !== entry) {
      void entry.pool.close();
      if (shared === entry) shared = null;
      return;
    }
    entry.idleTimer = setTimeout(() => {
      if (shared === entry && entry.users === 0) shared = null;
      void entry.pool.close();
    }, SHARED_POOL_IDLE_MS);
    entry.idleTimer.unref();
  };
  return { pool: entry.pool, release };
}

/** openFileHash without a worker: the same SHA-256, in the calling thread. */
function inThreadFileHash(): FileHash {
  const hash = createHash("sha256");
  return fileHashOver({
    add: async (bytes) => void hash.update(bytes),
    finish: async () => new Uint8Array(hash.digest()),
    drop: () => {},
  });
}

/** The FileHash contract (checked bytes, nothing after the end, one end) over a backend that only adds, finishes or drops. */
function fileHashOver(backend: { add(bytes: Uint8Array): Promise<void>; finish(): Promise<Uint8Array>; drop(): void }): FileHash {
  let ended = false;
  return {
    update: (bytes) => {
      if (ended) return Promise.reject(new Error("FileHash.update: the stream has ended"));
      if (!(bytes instanceof Uint8Array)) return Promise.reject(new TypeError("FileHash.update: bytes must be a Uint8Array"));
      return backend.add(bytes);
    },
    digest: () => {
      if (ended) return Promise.reject(new Error("FileHash.digest: the stream has ended"));
      ended = true;
      return backend.finish();
    },
    discard: () => {
      if (ended) return;
      ended = true;
      backend.drop();
    },
  };
}

/** The worker's error as the main thread's kind of error (the classes sealing throws for bad input). */
function rebuildError({ name, message }: { name: string; message: string }): Error {
  const error = name === "TypeError" ? new TypeError(message) : name === "RangeError" ? new RangeError(message) : new Error(message);
  if (error.name !== name) error.name = name;
  return error;
}

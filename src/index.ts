/**
 * peercloud's library API, for apps that embed the client:
 *
 * ```ts
 * import { PeercloudClient } from "peercloud";
 *
 * const client = await PeercloudClient.open({ home: "/var/lib/myapp/peercloud" });
 * try {
 *   const { link } = await client.put("./video.mp4", { replicas: 3 });
 *   await client.get(link, { output: "./copy.mp4", onProgress: (e) => console.log(e.bytesDone, e.bytesTotal) });
 * } finally {
 *   await client.close();
 * }
 * ```
 *
 * A home is made once with the CLI (`peercloud init`). The client uses the
 * home's running daemon (`peercloud peer start`) when there is one, and
 * otherwise works in-process, holding the home's lock until `close()`.
 * Failures are `PeercloudError`s with a stable `code`.
 */
import { resolve } from "node:path";
import type { Writable } from "node:stream";
import { PeercloudError } from "./core/errors.js";
import { ClientSession } from "./peer/client-session.js";
import { ControlClient } from "./peer/control-client.js";
import { PeerHome, resolveHomeDir } from "./peer/home.js";
import type { GetResult, OperationHooks, PeerOperations, PinResult, PutResult, StatusReport, UnpinResult } from "./peer/operations.js";
import type { LibraryEntry } from "./peer/library.js";

export { PeercloudError, isPeercloudError } from "./core/errors.js";
export { formatLink, parseLink, type LinkTarget, type ParsedLink } from "./core/link.js";
export type { GetResult, PinResult, PutResult, StatusReport, UnpinResult } from "./peer/operations.js";
export type { LibraryEntry } from "./peer/library.js";
export type { ProgressEvent, ProgressCallback } from "./peer/progress.js";

export interface OpenOptions {
  /** The peer home; default `$PEERCLOUD_HOME`, else `~/.peercloud`. */
  home?: string;
  /**
   * "auto" (default): the home's daemon if one runs, else in-process;
   * "daemon": fail (`peer_not_running`) unless a daemon runs; "local": always in-process
   * (fails with `peer_already_running` while a daemon runs).
   */
  via?: "auto" | "daemon" | "local";
}

/** Progress, warnings and cancellation of one operation. */
export type OperationOptions = OperationHooks;

export interface PutOptions extends OperationOptions {
  /** Copies to keep, this peer's included (1–16). Default: the network's (3). */
  replicas?: number;
  /** Regions the copies must span, nearest first from the home region (1–replicas). Default 1. */
  minRegions?: number;
  /** Also upload every chunk to the edge's R2 cold store. */
  cold?: boolean;
  /** Random per-file keys instead of convergent ones (no de-duplication). */
  private?: boolean;
}

export interface GetOptions extends OperationOptions {
  /** Where to write; an existing directory receives the content's own name. Default: the working directory. */
  output?: string;
  /** Write the file in order to this stream instead (files only; the stream is not ended). */
  stream?: Writable;
}

export class PeercloudClient {
  private constructor(
    private readonly ops: PeerOperations,
    /** Whether operations run in the home's daemon or in this process. */
    readonly via: "daemon" | "local",
    readonly homeDir: string,
  ) {}

  /** Opens a home made by `peercloud init`. */
  static async open(options: OpenOptions = {}): Promise<PeercloudClient> {
    const home = new PeerHome(resolveHomeDir(options.home));
    const daemon = options.via === "local" ? null : await home.runningDaemon();
    if (daemon) return new PeercloudClient(new ControlClient(daemon.controlSocket), "daemon", home.dir);
    if (options.via === "daemon") {
      throw new PeercloudError("peer_not_running", `no peer daemon runs in ${home.dir}; start one with \`peercloud peer start\``, 409);
    }
    return new PeercloudClient(await ClientSession.open(home), "local", home.dir);
  }

  /** Stores a file or directory; resolves with its link and what it cost. */
  put(path: string, options: PutOptions = {}): Promise<PutResult> {
    const { replicas, minRegions, cold, private: isPrivate, ...hooks } = options;
    return this.ops.put({ path: resolve(path), replicas, minRegions, cold, private: isPrivate }, hooks);
  }

  /** Downloads what a link names (resuming an interrupted download of it). */
  get(link: string, options: GetOptions = {}): Promise<GetResult> {
    const { output, stream, ...hooks } = options;
    if (stream) return this.ops.get({ link, stream: true }, hooks, stream);
    return this.ops.get({ link, output: resolve(output ?? ".") }, hooks);
  }

  /** Identity, daemon, directory connection and store of this home. */
  status(): Promise<StatusReport> {
    return this.ops.status();
  }

  /** What this home has put (with links) and got. */
  ls(): Promise<LibraryEntry[]> {
    return this.ops.ls();
  }

  /** Releases content this home put (local pins and the directory's replication target). */
  unpin(link: string, options: OperationOptions = {}): Promise<UnpinResult> {
    return this.ops.unpin(link, options);
  }

  /**
   * Changes the replica policy of content this home put: the replicas to
   * keep and the regions they must span (absent: as recorded at put).
   */
  pin(link: string, policy: { replicas?: number; minRegions?: number } & OperationOptions = {}): Promise<PinResult> {
    const { replicas, minRegions, ...hooks } = policy;
    return this.ops.pin({ link, replicas, minRegions }, hooks);
  }

  /** Releases the home (in-process: the store and the lock). */
  close(): Promise<void> {
    return this.ops.close();
  }
}

/**
 * The peer home directory (docs/architecture.md, "Home directory"): where a
 * peer keeps its identity, its config, its chunk store and, while the daemon
 * runs, its pid file, `daemon.json` and control socket.
 *
 * Several peers live on one machine by using several homes (`--home DIR`,
 * `PEERCLOUD_HOME`, default `~/.peercloud`). Every file is written atomically
 * (atomic-file.ts), the identity key with mode 0600. Nothing in a home
 * outlives a crash in a way that blocks a restart: a pid file whose process
 * is gone is stale and removed; only a live one means `peer_already_running`.
 * Reading never creates anything, so a mistyped `--home` fails cleanly
 * (`home_not_initialized`) instead of leaving an empty directory behind.
 */
import { link, mkdir, readFile, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import * as v from "valibot";
import { fromBase64Url, randomBytes, toBase64Url } from "../core/bytes.js";
import { ConflictError, PeercloudError } from "../core/errors.js";
import { identityFromSecret, SECRET_KEY_BYTES, type Identity } from "../core/identity.js";
import { errorCode, TEMP_FILE_PREFIX, writeFileAtomic } from "./atomic-file.js";
import { peerConfigSchema, type PeerConfig } from "./peer-config.js";

export type { PeerConfig } from "./peer-config.js";

export const HOME_ENV = "PEERCLOUD_HOME";
export const DEFAULT_HOME_NAME = ".peercloud";

/** What a running daemon publishes about itself (`daemon.json`). */
export interface DaemonInfo {
  pid: number;
  controlSocket: string;
  transferUrl: string;
  nodeId: string;
  startedAtMs: number;
}

const daemonInfoSchema = v.object({
  pid: v.pipe(v.number(), v.integer(), v.minValue(1)),
  controlSocket: v.string(),
  transferUrl: v.string(),
  nodeId: v.string(),
  startedAtMs: v.number(),
});

/** `--home` beats `PEERCLOUD_HOME` beats `~/.peercloud`; the result is absolute. */
export function resolveHomeDir(option?: string, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = option ?? (env[HOME_ENV] || undefined) ?? join(homedir(), DEFAULT_HOME_NAME);
  return resolve(chosen);
}

/** True when a process with this pid exists (EPERM: it exists but is not ours). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === "EPERM";
  }
}

export class PeerHome {
  readonly dir: string;
  readonly identityPath: string;
  readonly configPath: string;
  readonly storeDir: string;
  readonly pidPath: string;
  readonly daemonInfoPath: string;
  readonly controlSocketPath: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
    this.identityPath = join(this.dir, "identity.key");
    this.configPath = join(this.dir, "config.json");
    this.storeDir = join(this.dir, "store");
    this.pidPath = join(this.dir, "peer.pid");
    this.daemonInfoPath = join(this.dir, "daemon.json");
    this.controlSocketPath = join(this.dir, "control.sock");
  }

  /** Creates the directory (0700: it holds a secret key). */
  async create(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  async hasIdentity(): Promise<boolean> {
    return exists(this.identityPath);
  }

  /** Refuses to replace an existing identity unless `force`: losing a key loses the peer's place in the network. */
  async writeIdentity(identity: Identity, options: { force?: boolean } = {}): Promise<void> {
    if (!options.force && (await this.hasIdentity())) {
      throw new ConflictError("identity_exists", `${this.identityPath} already exists; pass --force to replace this peer's identity`);
    }
    await this.create();
    await writeFileAtomic(this.identityPath, toBase64Url(identity.secretKey) + "\n", { mode: 0o600 });
  }

  async readIdentity(): Promise<Identity> {
    const text = await this.readRequired(this.identityPath);
    let secret: Uint8Array;
    try {
      secret = fromBase64Url(text.trim());
    } catch {
      throw new PeercloudError("identity_invalid", `${this.identityPath} is not a base64url Ed25519 seed`, 500);
    }
    if (secret.length !== SECRET_KEY_BYTES) {
      throw new PeercloudError("identity_invalid", `${this.identityPath} holds ${secret.length} bytes, expected ${SECRET_KEY_BYTES}`, 500);
    }
    return identityFromSecret(secret);
  }

  /** Validated config; `config_invalid` names the first bad field. */
  async readConfig(): Promise<PeerConfig> {
    const text = await this.readRequired(this.configPath);
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (error) {
      throw new PeercloudError("config_invalid", `${this.configPath} is not valid JSON (${(error as Error).message})`, 500);
    }
    const result = v.safeParse(peerConfigSchema, raw);
    if (result.success) return result.output;
    const issue = result.issues[0];
    const field =
      issue.path
        ?.map((p) => (typeof p.key === "number" ? `[${p.key}]` : String(p.key)))
        .join(".")
        .replace(/\.\[/g, "[") || "(top level)";
    throw new PeercloudError("config_invalid", `${this.configPath}: field ${field}: ${issue.message}`, 500, { field });
  }

  async writeConfig(config: PeerConfig): Promise<void> {
    const checked = v.parse(peerConfigSchema, config);
    await this.create();
    await writeFileAtomic(this.configPath, JSON.stringify(checked, null, 2) + "\n", { mode: 0o600 });
  }

  /** Reads config + identity, failing with `home_not_initialized` when this is not a peer home. */
  async load(): Promise<{ config: PeerConfig; identity: Identity }> {
    const config = await this.readConfig();
    const identity = await this.readIdentity();
    if (identity.nodeId !== config.nodeId) {
      throw new PeercloudError("config_invalid", `${this.configPath}: field nodeId does not match identity.key (was the key replaced? run init again)`, 500, { field: "nodeId" });
    }
    return { config, identity };
  }

  /**
   * Claims the home for this process: the daemon for its lifetime, a one-shot
   * CLI command for its duration (two processes must never open one chunk
   * store: opening it removes temp files another writer may own). The pid file appears atomically with
   * its content (written to a temp file, then hard-linked into place, which
   * fails if it exists). A stale file (dead pid, or garbage) is removed and
   * the claim retried once; a live one is `peer_already_running`.
   */
  async acquirePidFile(pid = process.pid): Promise<void> {
    await this.create();
    for (let attempt = 0; attempt < 2; attempt++) {
      const temp = join(this.dir, `${TEMP_FILE_PREFIX}pid-${pid}-${toBase64Url(randomBytes(6))}`);
      await writeFileAtomic(temp, `${pid}\n`);
      try {
        await link(temp, this.pidPath);
        return;
      } catch (error) {
        if (errorCode(error) !== "EEXIST") throw error;
      } finally {
        await rm(temp, { force: true });
      }
      const holder = await this.runningPid();
      if (holder !== null) {
        throw new ConflictError("peer_already_running", `another peercloud process (pid ${holder}) is using ${this.dir}; a running \`peer start\` serves other commands through its control socket`);
      }
      // runningPid removed the stale file; try again.
    }
    throw new ConflictError("peer_already_running", `another process keeps claiming ${this.pidPath}`);
  }

  /** The daemon's pid if one runs in this home; removes a stale pid file (and its leftovers) as a side effect. */
  async runningPid(): Promise<number | null> {
    let text: string;
    try {
      text = await readFile(this.pidPath, "utf8");
    } catch (error) {
      if (errorCode(error) === "ENOENT") return null;
      throw error;
    }
    const pid = /^\s*(\d+)\s*$/.test(text) ? Number(text) : NaN;
    if (Number.isSafeInteger(pid) && pid > 0 && processAlive(pid)) return pid;
    await this.removeRuntimeFiles();
    return null;
  }

  /** Removes the pid file, daemon.json and the control socket (on stop, or when found stale). */
  async removeRuntimeFiles(): Promise<void> {
    await Promise.all([rm(this.daemonInfoPath, { force: true }), rm(this.controlSocketPath, { force: true })]);
    await rm(this.pidPath, { force: true });
  }

  async writeDaemonInfo(info: DaemonInfo): Promise<void> {
    await writeFileAtomic(this.daemonInfoPath, JSON.stringify(info, null, 2) + "\n");
  }

  /** `daemon.json` of a live daemon, or null when none runs (stale files are cleaned up). */
  async runningDaemon(): Promise<DaemonInfo | null> {
    const pid = await this.runningPid();
    if (pid === null) return null;
    try {
      const parsed = v.safeParse(daemonInfoSchema, JSON.parse(await readFile(this.daemonInfoPath, "utf8")));
      // Before daemon.json appears (still starting) or after a bad write: treat as not (yet) reachable.
      return parsed.success && parsed.output.pid === pid ? parsed.output : null;
    } catch {
      return null;
    }
  }

  private async readRequired(path: string): Promise<string> {
    try {
      return await readFile(path, "utf8");
    } catch (error) {
      if (errorCode(error) === "ENOENT") throw notInitialized(this.dir);
      if (errorCode(error) === "EACCES") throw new PeercloudError("home_unreadable", `cannot read ${path}: permission denied`, 500);
      throw error;
    }
  }
}

export function notInitialized(dir: string): PeercloudError {
  return new PeercloudError("home_not_initialized", `${dir} is not a peercloud home; run \`peercloud init --edge URL --join-token TOKEN\` (or pass --home)`, 400);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (errorCode(error) === "ENOENT") return false;
    throw error;
  }
}

/** A fresh 32-byte convergence secret, base64url (made once, at init). */
export function newConvergenceSecret(): string {
  return toBase64Url(randomBytes(32));
}

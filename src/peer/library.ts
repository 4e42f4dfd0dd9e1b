/**
 * The home's record of content: what this peer put (with the link, which
 * holds the key and is shown nowhere else after the put) and what it got.
 * `peercloud ls` lists it, `unpin` marks entries unpinned.
 *
 * One small JSON file, `<home>/library.json`, rewritten atomically on every
 * change (atomic-file.ts) — a put is a rare event compared with the chunk
 * traffic it causes, so a database would be overkill. Writes in one process
 * are serialised; the home's pid lock keeps a second process out. A corrupt
 * file is reported (`library_invalid`), never silently replaced.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as v from "valibot";
import { PeercloudError } from "../core/errors.js";
import { errorCode, writeFileAtomic } from "./atomic-file.js";

export interface LibraryEntry {
  /** CID of the root manifest. */
  cid: string;
  link: string;
  name: string;
  /** Plaintext bytes. */
  bytes: number;
  op: "put" | "get";
  /** put: the replication factor asked for; 0 once unpinned. */
  replicas?: number;
  /** put: the regions the replicas must span, when more than one. */
  minRegions?: number;
  cold?: boolean;
  private?: boolean;
  /** get: where it was written. */
  path?: string;
  atMs: number;
}

const entrySchema = v.object({
  cid: v.string(),
  link: v.string(),
  name: v.string(),
  bytes: v.number(),
  op: v.picklist(["put", "get"]),
  replicas: v.optional(v.number()),
  minRegions: v.optional(v.number()),
  cold: v.optional(v.boolean()),
  private: v.optional(v.boolean()),
  path: v.optional(v.string()),
  atMs: v.number(),
});
const fileSchema = v.object({ version: v.literal(1), entries: v.array(entrySchema) });

export class Library {
  readonly path: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(homeDir: string) {
    this.path = join(homeDir, "library.json");
  }

  async list(): Promise<LibraryEntry[]> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (error) {
      if (errorCode(error) === "ENOENT") return [];
      throw error;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new PeercloudError("library_invalid", `${this.path} is not valid JSON`, 500);
    }
    const result = v.safeParse(fileSchema, parsed);
    if (!result.success) throw new PeercloudError("library_invalid", `${this.path}: ${result.issues[0].message}`, 500);
    return result.output.entries;
  }

  /** Adds or replaces the entry with the same CID and operation. */
  record(entry: LibraryEntry): Promise<void> {
    return this.update((entries) => [...entries.filter((e) => !(e.cid === entry.cid && e.op === entry.op)), entry]);
  }

  /** Records a new replica policy on the put of `cid` (`peercloud pin`); returns whether there was one. */
  async setPolicy(cid: string, replicas: number, minRegions: number): Promise<boolean> {
    let found = false;
    await this.update((entries) =>
      entries.map((e) => {
        if (e.cid !== cid || e.op !== "put") return e;
        found = true;
        const { minRegions: _old, ...rest } = e;
        return { ...rest, replicas, ...(minRegions > 1 ? { minRegions } : {}) };
      }),
    );
    return found;
  }

  /** Marks the put of `cid` unpinned (replicas 0); returns whether there was one. */
  async markUnpinned(cid: string): Promise<boolean> {
    let found = false;
    await this.update((entries) =>
      entries.map((e) => {
        if (e.cid !== cid || e.op !== "put") return e;
        found = true;
        return { ...e, replicas: 0 };
      }),
    );
    return found;
  }

  private update(change: (entries: LibraryEntry[]) => LibraryEntry[]): Promise<void> {
    const next = this.queue.then(async () => {
      const entries = change(await this.list());
      await writeFileAtomic(this.path, JSON.stringify({ version: 1, entries }, null, 2) + "\n", { mode: 0o600 });
    });
    this.queue = next.catch(() => {});
    return next;
  }
}

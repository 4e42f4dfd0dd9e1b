/**
 * Provider-lookup coalescing (src/peer/network-adapters.ts): concurrent
 * `providers(cid)` calls become one batched directory request, each caller
 * gets its own answer, abort and error, and a failed batch falls back to
 * the single-CID lookup. A scripted DirectoryApi records every request;
 * nothing waits on time — every step awaits the promise it tests.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { cidOfBytes } from "../../src/core/cid.js";
import { PeercloudError } from "../../src/core/errors.js";
import type { ProviderInfo } from "../../src/core/messages.js";
import type { EdgeClient } from "../../src/peer/edge-client.js";
import { networkDeps, ProviderLookupBatcher, type DirectoryApi } from "../../src/peer/network-adapters.js";
import type { TransferClient } from "../../src/peer/transfer-client.js";

function provider(nodeId: string): ProviderInfo {
  return { nodeId, hostId: `h-${nodeId.slice(0, 4)}`, region: "eu", addresses: ["http://127.0.0.1:7070"], roles: ["service"], state: "alive", load: null, freeBytes: null };
}

/** Holder of `cid`: a node ID derived from it, so answers are checkable per CID. */
const holderOf = (cid: string) => cid.slice(-8).padStart(64, "0");

interface Call {
  cids: string[];
  signal: AbortSignal;
  answer(value?: Record<string, ProviderInfo[]>): void;
  fail(error: unknown): void;
}

/** A DirectoryApi whose batched answers the test releases by hand (or at once with `auto`). */
function scriptedDirectory(options: { auto?: boolean; batch?: boolean } = {}) {
  const batches: Call[] = [];
  const singles: string[] = [];
  let onBatch: (() => void) | null = null;
  const directory: DirectoryApi = {
    region: "eu",
    async findProviders(cid) {
      singles.push(cid);
      return [provider(holderOf(cid))];
    },
    place: async () => [],
    pin: async () => {},
  };
  if (options.batch !== false) {
    directory.findProvidersBatch = (cids, signal) =>
      new Promise((resolve, reject) => {
        const call: Call = {
          cids,
          signal,
          answer: (value) => resolve(value ?? Object.fromEntries(cids.map((cid) => [cid, [provider(holderOf(cid))]]))),
          fail: reject,
        };
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
        batches.push(call);
        if (options.auto) call.answer();
        onBatch?.();
      });
  }
  /** Resolves once `n` batches have been requested. */
  const batchesRequested = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (batches.length >= n) {
          onBatch = null;
          resolve();
        }
      };
      onBatch = check;
      check();
    });
  return { directory, batches, singles, batchesRequested };
}

const cidsOf = (n: number) => Promise.all(Array.from({ length: n }, () => cidOfBytes(new Uint8Array(randomBytes(32)))));
const live = () => new AbortController().signal;

describe("ProviderLookupBatcher", () => {
  it("answers N concurrent lookups with one batched request, each caller with its own CID's providers", async () => {
    const { directory, batches, singles } = scriptedDirectory({ auto: true });
    const batcher = new ProviderLookupBatcher(directory);
    const cids = await cidsOf(40);
    const answers = await Promise.all([...cids, cids[0]].map((cid) => batcher.find(cid, live())));
    expect(batches).toHaveLength(1);
    expect(batches[0].cids).toEqual(cids); // a repeated CID is asked once
    expect(singles).toEqual([]);
    answers.forEach((answer, i) => expect(answer.map((p) => p.nodeId)).toEqual([holderOf([...cids, cids[0]][i])]));
  });

  it("sends a batch as soon as maxBatch CIDs wait, without waiting for the window", async () => {
    const { directory, batches } = scriptedDirectory({ auto: true });
    // A window no test would wait for: only the size trigger can send these.
    const batcher = new ProviderLookupBatcher(directory, { windowMs: 3_600_000, maxBatch: 64 });
    const cids = await cidsOf(128);
    const answers = await Promise.all(cids.map((cid) => batcher.find(cid, live())));
    expect(batches.map((b) => b.cids.length)).toEqual([64, 64]);
    expect(answers.every((a, i) => a[0].nodeId === holderOf(cids[i]))).toBe(true);
    // A lone lookup waits for company; aborting it rejects it, and no request is ever sent for it.
    const lone = new AbortController();
    const pending = batcher.find((await cidsOf(1))[0], lone.signal);
    lone.abort(new PeercloudError("cancelled", "test cancelled", 499));
    await expect(pending).rejects.toMatchObject({ code: "cancelled" });
    batcher.flush();
    expect(batches).toHaveLength(2);
  });

  it("rejects only the caller that aborts; the batch answers the others, and is aborted when every caller has gone", async () => {
    const { directory, batches, batchesRequested } = scriptedDirectory();
    const batcher = new ProviderLookupBatcher(directory);
    const [a, b, c] = await cidsOf(3);
    const stop = new AbortController();
    const results = [batcher.find(a, live()), batcher.find(b, stop.signal), batcher.find(c, live())];
    await batchesRequested(1);
    stop.abort(new PeercloudError("cancelled", "caller left", 499));
    await expect(results[1]).rejects.toMatchObject({ code: "cancelled" });
    expect(batches[0].signal.aborted).toBe(false);
    batches[0].answer();
    expect((await results[0])[0].nodeId).toBe(holderOf(a));
    expect((await results[2])[0].nodeId).toBe(holderOf(c));

    // Everyone leaves: the request itself is aborted.
    const [x, y] = [new AbortController(), new AbortController()];
    const gone = [batcher.find(a, x.signal), batcher.find(b, y.signal)];
    await batchesRequested(2);
    x.abort(new Error("x left"));
    y.abort(new Error("y left"));
    await expect(gone[0]).rejects.toThrow("x left");
    await expect(gone[1]).rejects.toThrow("y left");
    expect(batches[1].signal.aborted).toBe(true);
    // An already-aborted signal is refused at once.
    const aborted = AbortSignal.abort(new Error("too late"));
    await expect(batcher.find(a, aborted)).rejects.toThrow("too late");
  });

  it("falls back to one lookup per CID when the batch fails, or when the directory has no batched form", async () => {
    const { directory, batches, singles, batchesRequested } = scriptedDirectory();
    const batcher = new ProviderLookupBatcher(directory);
    const cids = await cidsOf(3);
    const results = Promise.all(cids.map((cid) => batcher.find(cid, live())));
    await batchesRequested(1);
    batches[0].fail(new PeercloudError("not_found", "no such route", 404));
    expect((await results).map((r) => r[0].nodeId)).toEqual(cids.map(holderOf));
    expect(singles).toEqual(cids);

    const plain = scriptedDirectory({ batch: false });
    const direct = new ProviderLookupBatcher(plain.directory);
    expect((await direct.find(cids[0], live()))[0].nodeId).toBe(holderOf(cids[0]));
    expect(plain.singles).toEqual([cids[0]]);
  });

  it("gives each caller its own error when the fallback fails for it", async () => {
    const { directory, batches, batchesRequested } = scriptedDirectory();
    const [good, bad] = await cidsOf(2);
    directory.findProviders = async (cid) => {
      if (cid === bad) throw new PeercloudError("directory_timeout", "no answer", 504);
      return [provider(holderOf(cid))];
    };
    const batcher = new ProviderLookupBatcher(directory);
    const results = [batcher.find(good, live()), batcher.find(bad, live())];
    await batchesRequested(1);
    batches[0].fail(new Error("batch failed"));
    expect((await results[0])[0].nodeId).toBe(holderOf(good));
    await expect(results[1]).rejects.toMatchObject({ code: "directory_timeout" });
  });

  it("refuses nonsense limits", () => {
    const { directory } = scriptedDirectory();
    expect(() => new ProviderLookupBatcher(directory, { maxBatch: 0 })).toThrow(RangeError);
    expect(() => new ProviderLookupBatcher(directory, { maxBatch: 257 })).toThrow(RangeError);
    expect(() => new ProviderLookupBatcher(directory, { windowMs: -1 })).toThrow(RangeError);
  });
});

describe("networkDeps providers", () => {
  it("coalesces the download's lookups and leaves this peer out of the sources", async () => {
    const { directory, batches } = scriptedDirectory({ auto: true });
    const self = "f".repeat(64);
    const cids = await cidsOf(10);
    directory.findProvidersBatch = async (asked, signal) => {
      batches.push({ cids: asked, signal, answer: () => {}, fail: () => {} });
      return Object.fromEntries(asked.map((cid) => [cid, [provider(self), provider(holderOf(cid))]]));
    };
    const deps = networkDeps({ directory, transfer: {} as TransferClient, edge: {} as EdgeClient, selfNodeId: self });
    const sources = await Promise.all(cids.map((cid) => deps.providers!.providers(cid, live())));
    expect(batches).toHaveLength(1);
    expect(sources.map((list) => list.map((s) => s.id))).toEqual(cids.map((cid) => [holderOf(cid)]));
  });
});

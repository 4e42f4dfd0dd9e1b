/**
 * Kademlia k-buckets as a binary tree of buckets (Maymounkov & Mazières 2002,
 * §2.4; the splitting-tree form of §4.2).
 *
 * Each leaf covers an ID prefix and holds at most `k` contacts, least recently
 * seen first. When a full leaf receives a new contact it splits by the next
 * bit if the split policy allows; otherwise the insert is refused and the
 * caller learns the least recently seen contact (Kademlia pings it and evicts
 * it only if it is dead — old contacts are preferred because long-lived
 * peers are likely to stay).
 *
 * Two policies use the same structure:
 * - a **peer's routing table** splits only the bucket covering its own ID
 *   (`splitPolicy: "own-id"`), giving the classic O(k·log n) table;
 * - the **region directory** is the authoritative list of every live peer in
 *   its region, so it always splits (`splitPolicy: "always"`) and keeps all.
 *
 * `closest(target, n)` is exact over the stored contacts: every contact in the
 * subtree agreeing with `target` on bit d is closer (in XOR) than every
 * contact in the other subtree, so a depth-first walk that visits the
 * agreeing child first meets contacts in distance order, bucket by bucket.
 */
import { bitAt, compareDistance, nodeIdBytes, type NodeId, NODE_ID_BITS } from "./node-id.js";

export interface Contact {
  readonly nodeId: NodeId;
}

interface Entry<T> {
  idBytes: Uint8Array;
  contact: T;
}

interface Leaf<T> {
  entries: Entry<T>[];
  zero?: undefined;
  one?: undefined;
}

interface Inner<T> {
  entries?: undefined;
  zero: TreeNode<T>;
  one: TreeNode<T>;
}

type TreeNode<T> = Leaf<T> | Inner<T>;

export interface KBucketTreeOptions {
  /** Bucket size; Kademlia's k. Default 20. */
  k?: number;
  /** "own-id": split only the bucket covering `localId`; "always": split any full bucket. */
  splitPolicy?: "own-id" | "always";
  /** Required with split policy "own-id". */
  localId?: NodeId;
}

export type AddResult<T> =
  | { status: "added" | "updated" }
  /** The bucket is full and may not split; `oldest` is the least recently seen contact in it. */
  | { status: "full"; oldest: T };

export const DEFAULT_K = 20;

export class KBucketTree<T extends Contact> {
  readonly k: number;
  private readonly splitPolicy: "own-id" | "always";
  private readonly localId?: Uint8Array;
  private root: TreeNode<T> = { entries: [] };
  private count = 0;

  constructor(options: KBucketTreeOptions = {}) {
    this.k = options.k ?? DEFAULT_K;
    if (!Number.isInteger(this.k) || this.k < 1) throw new RangeError(`KBucketTree: k must be a positive integer, got ${this.k}`);
    this.splitPolicy = options.splitPolicy ?? "own-id";
    if (this.splitPolicy === "own-id") {
      if (!options.localId) throw new TypeError("KBucketTree: split policy 'own-id' needs localId");
      this.localId = nodeIdBytes(options.localId);
    }
  }

  get size(): number {
    return this.count;
  }

  /** Adds a contact or refreshes it (moves it to the most-recently-seen end, replacing its value). */
  add(contact: T): AddResult<T> {
    const idBytes = nodeIdBytes(contact.nodeId);
    let node = this.root;
    let depth = 0;
    for (;;) {
      if (node.entries === undefined) {
        node = bitAt(idBytes, depth) ? node.one : node.zero;
        depth++;
        continue;
      }
      const leaf = node as Leaf<T>;
      const at = leaf.entries.findIndex((e) => e.contact.nodeId === contact.nodeId);
      if (at >= 0) {
        leaf.entries.splice(at, 1);
        leaf.entries.push({ idBytes, contact });
        return { status: "updated" };
      }
      if (leaf.entries.length < this.k) {
        leaf.entries.push({ idBytes, contact });
        this.count++;
        return { status: "added" };
      }
      if (depth >= NODE_ID_BITS || !this.maySplit(idBytes, depth)) {
        return { status: "full", oldest: leaf.entries[0].contact };
      }
      // Split in place: the leaf becomes an inner node; entries keep their order.
      const zero: Leaf<T> = { entries: [] };
      const one: Leaf<T> = { entries: [] };
      for (const e of leaf.entries) (bitAt(e.idBytes, depth) ? one : zero).entries.push(e);
      const inner = node as unknown as Inner<T>;
      (inner as { entries?: unknown }).entries = undefined;
      inner.zero = zero;
      inner.one = one;
    }
  }

  remove(nodeId: NodeId): T | undefined {
    const leaf = this.leafFor(nodeIdBytes(nodeId));
    const at = leaf.entries.findIndex((e) => e.contact.nodeId === nodeId);
    if (at < 0) return undefined;
    const [removed] = leaf.entries.splice(at, 1);
    this.count--;
    return removed.contact;
  }

  get(nodeId: NodeId): T | undefined {
    return this.leafFor(nodeIdBytes(nodeId)).entries.find((e) => e.contact.nodeId === nodeId)?.contact;
  }

  has(nodeId: NodeId): boolean {
    return this.get(nodeId) !== undefined;
  }

  /** The `n` stored contacts closest to `target` by XOR distance, closest first. */
  closest(target: NodeId | Uint8Array, n: number = this.k, filter?: (contact: T) => boolean): T[] {
    const t = typeof target === "string" ? nodeIdBytes(target) : target;
    const out: T[] = [];
    const visit = (node: TreeNode<T>, depth: number): void => {
      if (out.length >= n) return;
      if (node.entries !== undefined) {
        const sorted = node.entries.filter((e) => !filter || filter(e.contact)).sort((a, b) => compareDistance(t, a.idBytes, b.idBytes));
        for (const e of sorted) {
          if (out.length >= n) return;
          out.push(e.contact);
        }
        return;
      }
      const near = bitAt(t, depth) ? node.one : node.zero;
      const far = near === node.one ? node.zero : node.one;
      visit(near, depth + 1);
      visit(far, depth + 1);
    };
    visit(this.root, 0);
    return out;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    const stack: TreeNode<T>[] = [this.root];
    while (stack.length) {
      const node = stack.pop()!;
      if (node.entries !== undefined) for (const e of node.entries) yield e.contact;
      else stack.push(node.one, node.zero);
    }
  }

  /** Number of leaf buckets (for diagnostics and tests of the split policy). */
  bucketCount(): number {
    let leaves = 0;
    const stack: TreeNode<T>[] = [this.root];
    while (stack.length) {
      const node = stack.pop()!;
      if (node.entries !== undefined) leaves++;
      else stack.push(node.one, node.zero);
    }
    return leaves;
  }

  private maySplit(idBytes: Uint8Array, depth: number): boolean {
    if (this.splitPolicy === "always") return true;
    // The leaf at `depth` reached by `idBytes` covers the local ID iff they agree on the first `depth` bits.
    for (let i = 0; i < depth; i++) if (bitAt(idBytes, i) !== bitAt(this.localId!, i)) return false;
    return true;
  }

  private leafFor(idBytes: Uint8Array): Leaf<T> {
    let node = this.root;
    let depth = 0;
    while (node.entries === undefined) {
      node = bitAt(idBytes, depth) ? node.one : node.zero;
      depth++;
    }
    return node as Leaf<T>;
  }
}

/**
 * Request/response bookkeeping over the directory WebSocket: ids, timeouts,
 * and what happens to a request when the socket is not there.
 *
 * A request made while disconnected waits (within its timeout) and is sent
 * on the next connection. A request in flight when the socket drops is sent
 * again on the next connection if it is safe to repeat (lookups, absolute pin
 * targets, placement questions); otherwise (signals) it fails with
 * `directory_disconnected`, since it may already have taken effect.
 * Answers are matched by id and by the reply type the request expects;
 * `error` replies reject with the directory's own code.
 */
import { PeercloudError } from "../core/errors.js";
import type { DirectoryToPeer, PeerToDirectory } from "../core/messages.js";

/** The few timer functions the directory connection uses, injectable so tests can drive time. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

type WithId = Exclude<Extract<PeerToDirectory, { id: string }>, { type: "announce" }>;
/** A request as callers write it: the id is assigned here. */
export type RequestBody = WithId extends infer M ? (M extends WithId ? Omit<M, "id"> : never) : never;
export type ReplyType = "nodes" | "providers" | "providers_batch" | "ack";

interface Pending {
  text: string;
  expect: ReplyType;
  resendable: boolean;
  sent: boolean;
  resolve: (message: DirectoryToPeer) => void;
  reject: (err: unknown) => void;
  timer: unknown;
}

/** Statuses for the directory's error codes, so callers can treat them like the HTTP API's. */
const STATUS_BY_CODE: Record<string, number> = {
  peer_not_connected: 404,
  peer_not_registered: 404,
  role_required: 403,
  not_a_storage_peer: 403,
  rate_limited: 429,
  internal_error: 502,
};

export class DirectoryRequests {
  private readonly pending = new Map<string, Pending>();
  private seq = 0;

  constructor(
    private readonly timers: Timers,
    private readonly timeoutMs: number,
    private readonly sendText: (text: string) => boolean,
  ) {}

  send<T extends DirectoryToPeer | object>(body: RequestBody, expect: ReplyType, resendable: boolean): Promise<T> {
    const id = `r${++this.seq}`;
    const text = JSON.stringify({ ...body, id } satisfies PeerToDirectory);
    return new Promise<T>((resolve, reject) => {
      const entry: Pending = {
        text,
        expect,
        resendable,
        sent: false,
        resolve: resolve as (message: DirectoryToPeer) => void,
        reject,
        timer: this.timers.setTimeout(() => {
          this.pending.delete(id);
          reject(new PeercloudError("directory_timeout", `the region directory did not answer ${body.type} within ${this.timeoutMs} ms`, 504));
        }, this.timeoutMs),
      };
      this.pending.set(id, entry);
      entry.sent = this.sendText(text);
    });
  }

  /** Delivers a reply; false when no request waits for this id. */
  answer(id: string, message: DirectoryToPeer): boolean {
    const entry = this.pending.get(id);
    if (!entry) return false;
    this.pending.delete(id);
    this.timers.clearTimeout(entry.timer);
    if (message.type === "error") {
      entry.reject(new PeercloudError(message.code, message.message, STATUS_BY_CODE[message.code] ?? 400));
    } else if (message.type !== entry.expect) {
      entry.reject(new PeercloudError("bad_directory_reply", `expected a ${entry.expect} reply, got ${message.type}`, 502));
    } else {
      entry.resolve(message);
    }
    return true;
  }

  /** A socket opened: send everything waiting, oldest first. */
  connected(): void {
    for (const entry of this.pending.values()) if (!entry.sent) entry.sent = this.sendText(entry.text);
  }

  /** The socket dropped: repeatable requests wait for the next one; the rest fail. */
  disconnected(): void {
    for (const [id, entry] of this.pending) {
      if (!entry.sent) continue;
      if (entry.resendable) {
        entry.sent = false;
        continue;
      }
      this.pending.delete(id);
      this.timers.clearTimeout(entry.timer);
      entry.reject(new PeercloudError("directory_disconnected", "the directory connection dropped before an answer; the request may or may not have taken effect", 503));
    }
  }

  failAll(err: unknown): void {
    for (const entry of this.pending.values()) {
      this.timers.clearTimeout(entry.timer);
      entry.reject(err);
    }
    this.pending.clear();
  }
}

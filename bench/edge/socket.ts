/**
 * One simulated peer's WebSocket to a directory (or to the echo baseline),
 * speaking src/core/messages.ts: JSON text frames, requests matched to
 * answers by `id`, the literal "ping" answered "pong" by the runtime.
 *
 * Built for many thousands of sockets in one Node process: no per-socket
 * timers, one pending-request map per socket, answers parsed once.
 */
import WebSocket from "ws";
import type { DirectoryToPeer } from "../../src/core/messages.js";

export type Answer = Exclude<DirectoryToPeer, { type: "welcome" } | { type: "signal" }>;

interface Pending {
  resolve: (answer: Answer) => void;
  reject: (err: Error) => void;
}

export interface SocketTotals {
  pongs: number;
  /** `error` messages without an id (answers to id-less messages such as status), by code. */
  unmatchedErrors: Map<string, number>;
  unexpectedCloses: number;
}

export class PeerSocket {
  private readonly pending = new Map<string, Pending>();
  private nextId = 0;
  welcomed = false;
  closed = false;

  private constructor(
    private readonly ws: WebSocket,
    private readonly totals: SocketTotals,
  ) {
    ws.on("message", (data, isBinary) => this.onMessage(isBinary ? "" : data.toString()));
    ws.on("close", () => {
      if (!this.closed) totals.unexpectedCloses++;
      this.closed = true;
      this.failAll(new Error("socket closed"));
    });
    ws.on("error", () => {
      /* "close" follows */
    });
  }

  /** Opens a socket; resolves once the upgrade succeeded (not waiting for `welcome`). */
  static open(url: string, headers: Record<string, string>, totals: SocketTotals, timeoutMs: number): Promise<PeerSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers, perMessageDeflate: false, handshakeTimeout: timeoutMs });
      const socket = new PeerSocket(ws, totals);
      const onUnexpected = (_req: unknown, res: { statusCode?: number; on(e: string, f: (d: Buffer) => void): void }) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => {
          socket.closed = true;
          reject(new Error(`upgrade refused: HTTP ${res.statusCode} ${body.slice(0, 300)}`));
        });
      };
      ws.once("unexpected-response", onUnexpected);
      ws.once("open", () => resolve(socket));
      ws.once("error", (err) => {
        socket.closed = true;
        reject(err);
      });
    });
  }

  get bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  newId(): string {
    return (this.nextId++).toString(36);
  }

  /** Sends a frame that gets no answer (status reports, "ping"). */
  sendRaw(text: string): void {
    this.ws.send(text);
  }

  /** Sends a request whose JSON already carries `id`; resolves with the answer bearing that id. */
  request(id: string, text: string): Promise<Answer> {
    if (this.closed) return Promise.reject(new Error("socket closed"));
    return new Promise<Answer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(text);
    });
  }

  /** Forgets a request (its answer, if it still comes, is dropped). */
  forget(id: string): void {
    this.pending.delete(id);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new Error("socket closed"));
    this.ws.terminate();
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private onMessage(text: string): void {
    if (text === "pong") {
      this.totals.pongs++;
      return;
    }
    let msg: DirectoryToPeer;
    try {
      msg = JSON.parse(text) as DirectoryToPeer;
    } catch {
      return;
    }
    if (msg.type === "welcome") {
      this.welcomed = true;
      return;
    }
    const id = (msg as { id?: unknown }).id;
    if (typeof id === "string") {
      const p = this.pending.get(id);
      if (p) {
        this.pending.delete(id);
        p.resolve(msg as Answer);
        return;
      }
    }
    if (msg.type === "error") {
      const code = msg.code ?? "unknown";
      this.totals.unmatchedErrors.set(code, (this.totals.unmatchedErrors.get(code) ?? 0) + 1);
    }
  }
}

export function newTotals(): SocketTotals {
  return { pongs: 0, unmatchedErrors: new Map(), unexpectedCloses: 0 };
}

/** Runs `task` over `items` with at most `limit` in flight; returns results in order (errors as Error). */
export async function mapBounded<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<(R | Error)[]> {
  const out: (R | Error)[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        out[i] = await task(items[i], i);
      } catch (err) {
        out[i] = err instanceof Error ? err : new Error(String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Differences between two snapshots of the Durable Objects' counters
 * (bench/edge/runtime.ts): wake-ups = handler invocations of any kind,
 * messages = webSocketMessage calls, plus SQLite rows and database size.
 */
import type { Counters, ObjectCounters } from "./runtime.js";

const ZERO: ObjectCounters = { constructed: 0, handlers: {}, rpc: {}, rowsRead: 0, rowsWritten: 0, setAlarm: 0, databaseBytes: 0 };

export interface Delta {
  wakes: number;
  messages: number;
  alarms: number;
  fetches: number;
  constructed: number;
  rowsRead: number;
  rowsWritten: number;
  setAlarm: number;
  databaseBytes: number;
}

export function delta(before: Counters, after: Counters, cls: string): Delta {
  const a = after[cls] ?? ZERO;
  const b = before[cls] ?? ZERO;
  const h = (c: ObjectCounters, k: string) => c.handlers[k] ?? 0;
  const handlers = (c: ObjectCounters) => Object.values(c.handlers).reduce((s, n) => s + n, 0);
  return {
    wakes: handlers(a) - handlers(b),
    messages: h(a, "webSocketMessage") - h(b, "webSocketMessage"),
    alarms: h(a, "alarm") - h(b, "alarm"),
    fetches: h(a, "fetch") - h(b, "fetch"),
    constructed: a.constructed - b.constructed,
    rowsRead: (a.rowsRead ?? 0) - (b.rowsRead ?? 0),
    rowsWritten: (a.rowsWritten ?? 0) - (b.rowsWritten ?? 0),
    setAlarm: (a.setAlarm ?? 0) - (b.setAlarm ?? 0),
    databaseBytes: (a.databaseBytes ?? 0) - (b.databaseBytes ?? 0),
  };
}

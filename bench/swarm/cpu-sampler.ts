/**
 * CPU during a timed phase: the whole machine from /proc/stat (not
 * namespaced: every process on the box, this run's and other people's,
 * counts), and this run's own share from its process tree.
 *
 * Busy = user + nice + system + irq + softirq + steal (steal: time the
 * hypervisor gave to someone else — not available to this run either);
 * idle + iowait is headroom. A one-second window is "saturated" when busy
 * is at least SATURATED_SHARE of all cores: then the run may be CPU-bound
 * rather than link-bound, and `saturatedShare` (the share of such seconds)
 * says how much of the phase that was.
 *
 * Attribution (so a reader can tell a run that saturated the machine from
 * one that met someone else's benchmark): `runProcessesShare` is the CPU
 * time charged to this bench and every process under it (utime + stime +
 * the reaped children's cutime + cstime, summed over its live process tree
 * from /proc/<pid>/stat); `kernelIrqShare` is irq + softirq — on this box
 * mostly the veth/bridge/HTB packet path the run itself drives;
 * `otherProcessesShare` is the remaining user + system time: processes that
 * are not this run's. All in the same clock ticks, as shares of all cores.
 */
import { readdirSync, readFileSync } from "node:fs";

export const SATURATED_SHARE = 0.95;
const DEFAULT_SAMPLE_MS = 250;

interface CpuTimes {
  atMs: number;
  busy: number;
  total: number;
  processes: number;
  irq: number;
  steal: number;
  own: number;
}

export interface CpuSummary {
  cores: number;
  seconds: number;
  /** Mean busy share of all cores over the phase (0–1). */
  meanBusyShare: number;
  /** Share of one-second windows with busy ≥ SATURATED_SHARE of all cores. */
  saturatedShare: number;
  /** Mean shares of all cores: this run's processes, kernel irq/softirq, steal, other processes. */
  runProcessesShare: number;
  kernelIrqShare: number;
  stealShare: number;
  otherProcessesShare: number;
  /**
   * Shares of all cores used by named groups of this run's long-lived
   * processes (each with everything below it, e.g. workerd under the edge);
   * processes that exit during the phase (drivers) count in the run's total
   * only.
   */
  byGroup: Record<string, number>;
  /** Busy share per one-second window, in order. */
  perSecondBusyShare: number[];
}

/** One pass over /proc: CPU ticks of any process together with everything below it (see the module comment). */
export function processTreeTicker(): (rootPid: number) => number {
  const children = new Map<number, number[]>();
  const ticks = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // Fields after "(comm)": state ppid … utime(14) stime(15) cutime(16) cstime(17), 1-based over the whole line.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const pid = Number(name);
    const ppid = Number(rest[1]);
    ticks.set(pid, Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14]));
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  return (rootPid) => {
    let sum = 0;
    const stack = [rootPid];
    while (stack.length) {
      const pid = stack.pop()!;
      sum += ticks.get(pid) ?? 0;
      stack.push(...(children.get(pid) ?? []));
    }
    return sum;
  };
}

export function processTreeTicks(rootPid: number): number {
  return processTreeTicker()(rootPid);
}

/** Ticks per group of process trees (e.g. "edge": [pid], "downloader daemons": [pids…]). */
function groupTicks(groups: Record<string, number[]>): Record<string, number> {
  const ticker = processTreeTicker();
  return Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, pids.reduce((sum, pid) => sum + ticker(pid), 0)]));
}

function readCpu(): CpuTimes & { cores: number } {
  const lines = readFileSync("/proc/stat", "utf8").split("\n");
  const [user, nice, system, idle, iowait, irq, softirq, steal = 0] = lines[0].trim().split(/\s+/).slice(1).map(Number);
  const cores = lines.filter((l) => /^cpu\d+ /.test(l)).length;
  const busy = user + nice + system + irq + softirq + steal;
  return { atMs: performance.now(), busy, total: busy + idle + iowait, processes: user + nice + system, irq: irq + softirq, steal, own: processTreeTicks(process.pid), cores };
}

export class CpuSampler {
  private readonly samples: CpuTimes[] = [];
  private timer: NodeJS.Timeout | null = null;
  private cores = 1;
  private groups: Record<string, number[]> = {};
  private groupsAtStart: Record<string, number> = {};

  /** `groups`: pids whose process trees are accounted by name (see CpuSummary.byGroup). */
  start(groups: Record<string, number[]> = {}, sampleMs = DEFAULT_SAMPLE_MS): void {
    this.groups = groups;
    this.groupsAtStart = groupTicks(groups);
    const first = readCpu();
    this.cores = first.cores;
    this.samples.push(first);
    this.timer = setInterval(() => this.samples.push(readCpu()), sampleMs);
    this.timer.unref();
  }

  stop(): CpuSummary {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.samples.push(readCpu());
    const summary = summarize(this.samples, this.cores);
    const end = groupTicks(this.groups);
    const first = this.samples[0];
    const total = this.samples[this.samples.length - 1].total - first.total;
    for (const name of Object.keys(end)) summary.byGroup[name] = total > 0 ? Math.max(0, end[name] - this.groupsAtStart[name]) / total : 0;
    return summary;
  }
}

/** Folds cumulative samples into one-second windows (the last, partial one included when ≥ half a second). */
export function summarize(samples: readonly CpuTimes[], cores: number): CpuSummary {
  const first = samples[0];
  const last = samples[samples.length - 1];
  const perSecond: number[] = [];
  let windowStart = first;
  for (const s of samples.slice(1)) {
    const elapsed = s.atMs - windowStart.atMs;
    if (elapsed >= 1000 || (s === last && elapsed >= 500)) {
      const total = s.total - windowStart.total;
      perSecond.push(total > 0 ? (s.busy - windowStart.busy) / total : 0);
      windowStart = s;
    }
  }
  const total = last.total - first.total;
  const share = (a: number) => (total > 0 ? a / total : 0);
  const own = Math.max(0, last.own - first.own);
  const processes = last.processes - first.processes;
  return {
    cores,
    seconds: (last.atMs - first.atMs) / 1000,
    meanBusyShare: share(last.busy - first.busy),
    saturatedShare: perSecond.length ? perSecond.filter((b) => b >= SATURATED_SHARE).length / perSecond.length : 0,
    runProcessesShare: share(own),
    kernelIrqShare: share(last.irq - first.irq),
    stealShare: share(last.steal - first.steal),
    otherProcessesShare: share(Math.max(0, processes - own)),
    byGroup: {},
    perSecondBusyShare: perSecond,
  };
}

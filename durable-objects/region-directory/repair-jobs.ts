/**
 * The `repair_jobs` table: one row per replica the region directory has set
 * out to re-create (issue 6, "Repair"). Rows, not memory, because the object
 * may be evicted or restarted between any two events: a job planned, running
 * or waiting out its backoff is still there afterwards, and its deadline is
 * still in the row for the alarm to find.
 *
 * A job's life:
 *   queued  → running   dispatched to a target peer with a source (a live
 *                       holder, or "r2" for the cold store); `deadline_ms`
 *   running → (deleted) confirmed: the target announced the chunk (or said
 *                       done and the replica row is there); counted in
 *                       `repair_completed` / `repair_bytes`
 *   running → queued    the attempt failed or timed out; the target (or the
 *                       source, by the failure's code) is avoided next time
 *   queued/failed → (deleted) confirmed late: the target of the last
 *                       attempt announced the chunk after all (its report
 *                       lost, as across a restart of this object, or past
 *                       the deadline); counted as completed like the above
 *   running → failed    `repairMaxAttempts` attempts failed: the job waits
 *                       `repairRetryBackoffMs`, then starts over as queued
 *   queued/failed → (deleted) the chunk is no longer under-replicated
 *
 * A rebalance *move* (rebalancer.ts) is a job of the same table with
 * `moveFrom` / `moveTo` set: a copy of a chunk that is at its target, onto
 * the emptier peer `moveTo`, whose fuller holder `moveFrom` is trimmed
 * afterwards. Moves share the runs, deadlines, failures, per-peer limit and
 * confirmation of repair jobs; the rebalancer plans and dispatches them,
 * counts them apart, and drops those that cannot go on instead of backing
 * off. A confirmed move is handed to the ledger (rebalance-ledger.ts).
 *
 * Plain SQL over the injected `Sql`; the decisions (which chunk, which
 * source, which target) are the scheduler's (repair-scheduler.ts) and the
 * rebalancer's.
 */
import type { RebalanceLedger } from "./rebalance-ledger.js";
import type { Sql } from "./sql.js";

export type RepairJobState = "queued" | "running" | "failed";
/** A repair job proper, or a rebalance move. */
export type JobKind = "repair" | "move";

/** The cold store as a job's source (a node ID otherwise). */
export const R2_SOURCE = "r2";

export const REPAIR_COMPLETED = "repair_completed";
export const REPAIR_BYTES = "repair_bytes";
export const REPAIR_FAILED_ATTEMPTS = "repair_failed_attempts";
export const REBALANCE_MOVES = "rebalance_moves";
export const REBALANCE_BYTES = "rebalance_bytes";
export const REBALANCE_FAILED_ATTEMPTS = "rebalance_failed_attempts";
const JOB_SEQUENCE = "repair_job_seq";

export interface RepairJob {
  jobId: string;
  cid: string;
  state: RepairJobState;
  /** Replicas the chunk lacked when the job was planned: its priority. */
  missing: number;
  sizeBytes: number | null;
  /** Dispatches in the current round (reset when a failed job starts over). */
  attempts: number;
  target: string | null;
  source: string | null;
  /** Peers that failed this job in this round, as a target / as a source ("r2" included). */
  avoidTargets: string[];
  avoidSources: string[];
  notBeforeMs: number;
  deadlineMs: number | null;
  createdMs: number;
  lastError: string | null;
  /** A rebalance move: the holder whose copy is trimmed once the copy is confirmed; null for a repair job. */
  moveFrom: string | null;
  /** A rebalance move: the peer that must receive the copy (its only target); null for a repair job. */
  moveTo: string | null;
}

type JobRow = {
  job_id: string;
  cid: string;
  state: string;
  missing: number;
  size_bytes: number | null;
  attempts: number;
  target: string | null;
  source: string | null;
  avoid_targets: string;
  avoid_sources: string;
  not_before_ms: number;
  deadline_ms: number | null;
  created_ms: number;
  last_error: string | null;
  move_from: string | null;
  move_to: string | null;
};

function fromRow(r: JobRow): RepairJob {
  return {
    jobId: r.job_id,
    cid: r.cid,
    state: r.state as RepairJobState,
    missing: r.missing,
    sizeBytes: r.size_bytes,
    attempts: r.attempts,
    target: r.target,
    source: r.source,
    avoidTargets: JSON.parse(r.avoid_targets) as string[],
    avoidSources: JSON.parse(r.avoid_sources) as string[],
    notBeforeMs: r.not_before_ms,
    deadlineMs: r.deadline_ms,
    createdMs: r.created_ms,
    lastError: r.last_error,
    moveFrom: r.move_from,
    moveTo: r.move_to,
  };
}

const KIND_FILTER: Record<JobKind, string> = { repair: "move_to IS NULL", move: "move_to IS NOT NULL" };
const kindFilter = (kind: JobKind | undefined) => (kind ? KIND_FILTER[kind] : "true");

export interface RepairCounts {
  queued: number;
  running: number;
  failed: number;
}

/** A chunk of the under-replicated queue that needs more jobs than it has. */
export interface RepairCandidate {
  cid: string;
  missing: number;
  openJobs: number;
  sizeBytes: number | null;
}

export class RepairJobs {
  constructor(
    private readonly sql: Sql,
    private readonly ledger: RebalanceLedger,
  ) {}

  get(jobId: string): RepairJob | null {
    const row = this.sql.exec<JobRow>(`SELECT * FROM repair_jobs WHERE job_id = ?`, jobId).toArray()[0];
    return row ? fromRow(row) : null;
  }

  /** Jobs in a state (of one kind, or both), most endangered chunk first (most missing, then oldest); moves miss nothing, so they come last. */
  list(state: RepairJobState, limit: number, kind?: JobKind): RepairJob[] {
    return this.sql
      .exec<JobRow>(`SELECT * FROM repair_jobs WHERE state = ? AND ${kindFilter(kind)} ORDER BY missing DESC, created_ms, job_id LIMIT ?`, state, limit)
      .toArray()
      .map(fromRow);
  }

  /** Every job of a chunk (a chunk short of n replicas may have up to n). */
  ofCid(cid: string): RepairJob[] {
    return this.sql.exec<JobRow>(`SELECT * FROM repair_jobs WHERE cid = ?`, cid).toArray().map(fromRow);
  }

  counts(kind?: JobKind): RepairCounts {
    const out: RepairCounts = { queued: 0, running: 0, failed: 0 };
    for (const r of this.sql.exec<{ state: string; n: number }>(`SELECT state, count(*) AS n FROM repair_jobs WHERE ${kindFilter(kind)} GROUP BY state`).toArray()) {
      out[r.state as RepairJobState] = r.n;
    }
    return out;
  }

  /** Running jobs (and moves) per peer, as target and as source (the per-peer limit counts both). */
  runningPerPeer(): Map<string, number> {
    const out = new Map<string, number>();
    const rows = this.sql.exec<{ peer: string; n: number }>(
      `SELECT peer, sum(n) AS n FROM (
         SELECT target AS peer, count(*) AS n FROM repair_jobs WHERE state = 'running' GROUP BY target
         UNION ALL
         SELECT source AS peer, count(*) AS n FROM repair_jobs WHERE state = 'running' AND source != '${R2_SOURCE}' GROUP BY source
       ) GROUP BY peer`,
    );
    for (const r of rows.toArray()) out.set(r.peer, r.n);
    return out;
  }

  /**
   * Under-replicated chunks with fewer open jobs than missing replicas, most
   * endangered first. Reads the queue in its index order (most missing,
   * then longest waiting), so a long queue costs `limit` rows, not all.
   */
  candidates(limit: number): RepairCandidate[] {
    return this.sql
      .exec<{ cid: string; missing: number; open_jobs: number; size_bytes: number | null }>(
        `SELECT u.cid, u.missing, (SELECT count(*) FROM repair_jobs j WHERE j.cid = u.cid) AS open_jobs,
           (SELECT size_bytes FROM pins p WHERE p.cid = u.cid) AS size_bytes
         FROM under_replicated u
         WHERE u.missing > (SELECT count(*) FROM repair_jobs j WHERE j.cid = u.cid)
         ORDER BY u.missing DESC, u.since_ms LIMIT ?`,
        limit,
      )
      .toArray()
      .map((r) => ({ cid: r.cid, missing: r.missing, openJobs: r.open_jobs, sizeBytes: r.size_bytes }));
  }

  /** Plans a queued job; returns its id. */
  plan(cid: string, missing: number, sizeBytes: number | null, nowMs: number): string {
    const seq = this.sql.exec<{ value: number }>(`INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value`, JOB_SEQUENCE).one().value;
    const jobId = `r${seq}`;
    this.sql.exec(
      `INSERT INTO repair_jobs (job_id, cid, state, missing, size_bytes, attempts, avoid_targets, avoid_sources, not_before_ms, created_ms)
       VALUES (?, ?, 'queued', ?, ?, 0, '[]', '[]', ?, ?)`,
      jobId,
      cid,
      missing,
      sizeBytes,
      nowMs,
      nowMs,
    );
    return jobId;
  }

  /** Plans a queued rebalance move of `cid` from `from` to `to`; returns its id. */
  planMove(cid: string, sizeBytes: number, from: string, to: string, nowMs: number): string {
    const jobId = this.plan(cid, 0, sizeBytes, nowMs);
    this.sql.exec(`UPDATE repair_jobs SET move_from = ?, move_to = ? WHERE job_id = ?`, from, to, jobId);
    return jobId;
  }

  /**
   * Drops jobs not yet running whose chunk left the queue (repaired otherwise, unpinned, a holder came back),
   * and moves not yet running whose chunk entered it: repair plans its own jobs for those, most endangered first.
   */
  dropUnneeded(): number {
    return this.sql
      .exec<{ job_id: string }>(
        `DELETE FROM repair_jobs WHERE state != 'running'
           AND ((move_to IS NULL AND cid NOT IN (SELECT cid FROM under_replicated)) OR (move_to IS NOT NULL AND cid IN (SELECT cid FROM under_replicated)))
         RETURNING job_id`,
      )
      .toArray().length;
  }

  /** Deletes a job that is not running (a move the rebalancer gave up). */
  drop(jobId: string): void {
    this.sql.exec(`DELETE FROM repair_jobs WHERE job_id = ? AND state != 'running'`, jobId);
  }

  /** Failed repair jobs whose backoff is over start a new round: queued, no attempts, nothing avoided. (Failed moves are dropped instead.) */
  reviveFailed(nowMs: number): number {
    return this.sql
      .exec<{ job_id: string }>(
        `UPDATE repair_jobs SET state = 'queued', attempts = 0, avoid_targets = '[]', avoid_sources = '[]', not_before_ms = ?
         WHERE state = 'failed' AND move_to IS NULL AND not_before_ms <= ? RETURNING job_id`,
        nowMs,
        nowMs,
      )
      .toArray().length;
  }

  /** Marks a queued job dispatched to `target` from `source` until `deadlineMs`. */
  start(jobId: string, target: string, source: string, deadlineMs: number): void {
    this.sql.exec(
      `UPDATE repair_jobs SET state = 'running', target = ?, source = ?, attempts = attempts + 1, deadline_ms = ? WHERE job_id = ? AND state = 'queued'`,
      target,
      source,
      deadlineMs,
      jobId,
    );
  }

  /**
   * One attempt failed: the job goes back to the queue avoiding the peer to
   * blame (`blame`: the target, the source, or both), or — its attempts used
   * up — waits `backoffMs` as failed. Returns the job's new state.
   */
  fail(job: RepairJob, blame: { target: boolean; source: boolean }, error: string, maxAttempts: number, backoffMs: number, nowMs: number): RepairJobState {
    const avoidTargets = blame.target && job.target ? [...new Set([...job.avoidTargets, job.target])] : job.avoidTargets;
    const avoidSources = blame.source && job.source ? [...new Set([...job.avoidSources, job.source])] : job.avoidSources;
    const exhausted = job.attempts >= maxAttempts;
    const state: RepairJobState = exhausted ? "failed" : "queued";
    this.sql.exec(
      `UPDATE repair_jobs SET state = ?, deadline_ms = NULL, avoid_targets = ?, avoid_sources = ?, not_before_ms = ?, last_error = ? WHERE job_id = ?`,
      state,
      JSON.stringify(avoidTargets),
      JSON.stringify(avoidSources),
      exhausted ? nowMs + backoffMs : nowMs,
      error.slice(0, 200),
      job.jobId,
    );
    this.addCounter(job.moveTo === null ? REPAIR_FAILED_ATTEMPTS : REBALANCE_FAILED_ATTEMPTS, 1);
    return state;
  }

  /** Ends a job's round without an attempt (nothing could serve it): failed until `untilMs`. */
  park(jobId: string, error: string, untilMs: number): void {
    this.sql.exec(`UPDATE repair_jobs SET state = 'failed', deadline_ms = NULL, not_before_ms = ?, last_error = ? WHERE job_id = ?`, untilMs, error.slice(0, 200), jobId);
    this.addCounter(REPAIR_FAILED_ATTEMPTS, 1);
  }

  /**
   * Confirms jobs whose (last) target now holds their chunk (its
   * announcement arrived); returns the confirmed jobs. Not only running
   * ones: an attempt given up on (a deadline passed, or the target was
   * not connected when this object restarted) may still have finished,
   * and then it did the repair — counting it, rather than dropping the job
   * once the chunk leaves the queue, keeps `repair_bytes` true. Bytes repaired count
   * the chunk's pinned size, else `fallbackSizeBytes` (the target's report).
   * A confirmed move counts as moved, and its source's copy becomes the one
   * to trim (the ledger).
   */
  confirm(target: string, cids: readonly string[], nowMs: number, fallbackSizeBytes?: number): RepairJob[] {
    if (cids.length === 0) return [];
    const done = this.sql.exec<JobRow>(`DELETE FROM repair_jobs WHERE target = ? AND cid IN (SELECT value FROM json_each(?)) RETURNING *`, target, JSON.stringify(cids)).toArray().map(fromRow);
    const bytes = (jobs: RepairJob[]) => jobs.reduce((sum, j) => sum + (j.sizeBytes ?? fallbackSizeBytes ?? 0), 0);
    const repairs = done.filter((j) => j.moveTo === null);
    const moves = done.filter((j) => j.moveTo !== null);
    this.addCounter(REPAIR_COMPLETED, repairs.length);
    this.addCounter(REPAIR_BYTES, bytes(repairs));
    this.addCounter(REBALANCE_MOVES, moves.length);
    this.addCounter(REBALANCE_BYTES, bytes(moves));
    for (const m of moves) this.ledger.record({ cid: m.cid, from: m.moveFrom!, to: target, sizeBytes: m.sizeBytes ?? fallbackSizeBytes ?? 0 }, nowMs);
    return done;
  }

  /** The earliest moment something is due without news: a running job's deadline or a failed job's retry. */
  nextDueMs(): number | null {
    return this.sql
      .exec<{ due: number | null }>(
        `SELECT min(due) AS due FROM (
           SELECT min(deadline_ms) AS due FROM repair_jobs WHERE state = 'running'
           UNION ALL SELECT min(not_before_ms) FROM repair_jobs WHERE state = 'failed')`,
      )
      .one().due;
  }

  counter(name: string): number {
    return this.sql.exec<{ value: number }>(`SELECT value FROM counters WHERE name = ?`, name).toArray()[0]?.value ?? 0;
  }

  private addCounter(name: string, delta: number): void {
    if (delta === 0) return;
    this.sql.exec(`INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value`, name, delta);
  }
}

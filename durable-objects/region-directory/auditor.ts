/**
 * Audits (issue 6 item 7), the directory's half: challenges the holders of
 * pinned chunks to prove they still hold them, and takes the replica (and
 * reputation) of those that cannot.
 *
 * Design: cross-checked challenges. The directory holds no chunk and a CID
 * is the SHA-256 of the whole chunk, so it cannot check a proof over a
 * range by itself. Instead one audit *round* picks a chunk and sends every
 * alive, connected holder the same fresh nonce and random range
 * (`audit`); each answers hex SHA-256(nonce ‖ range) (src/core/audit.ts).
 * When all have answered, or at the deadline, the round is judged:
 *
 *  - no answer by the deadline, `missing`, `corrupt` or `failed`: the
 *    holder fails;
 *  - proofs: the value a strict majority of the proofs agree on passes and
 *    every other proof fails (a holder that lied or holds other bytes);
 *    without a strict majority (1 against 1) nobody is judged
 *    ("inconclusive"): the directory cannot tell the honest one;
 *  - a single proof passes (nothing to compare it with: it shows the
 *    holder read *some* bytes at once, not that they are the right ones);
 *  - a holder that stopped being alive before answering is not judged
 *    (liveness handles it).
 *
 * A failing holder loses its replica row (Directory.recordAudit: the chunk
 * enters the under-replicated queue if that leaves it below target, and the
 * existing repair re-creates the copy elsewhere), gets a `trim` for the
 * chunk (an honest peer with a bad copy deletes it, so its next inventory
 * sync does not list it again), and one failure on its audit record, which
 * lowers its reputation (reputationScore). Passing adds one pass.
 *
 * Pace: one pass per `auditIntervalMs` (the first one interval after the
 * object's first pass, persisted in `meta` so restarts neither skip nor
 * repeat passes), at most `auditChunksPerPass` rounds and
 * `auditsPerPeerPerPass` outstanding audits per holder. Chunks are picked
 * from a random point of the CID space (CIDs are uniform hashes), so a pass
 * reads a bounded slice of `pins` and over time every chunk is sampled.
 * Chunks with a repair job, and cold ones (being evicted), are skipped. Outstanding audits are rows of
 * `audits`, so a restart judges them from SQL at the next pass.
 */
import { AUDIT_NONCE_BYTES, LOW_REPUTATION } from "../../src/core/audit.js";
import { randomBytes, toHex } from "../../src/core/bytes.js";
import { cidFromSha256 } from "../../src/core/cid.js";
import type { DirectoryToPeer, PeerToDirectory } from "../../src/core/messages.js";
import type { NetworkParams } from "../../src/core/params.js";
import type { AuditSummary } from "../region-directory-contract.js";
import type { Directory } from "./directory.js";
import type { PeerRecord } from "./peer-store.js";
import { readMeta, writeMeta } from "./schema.js";
import type { Sql } from "./sql.js";

export const AUDITS_PASSED = "audits_passed";
export const AUDITS_FAILED = "audits_failed";
export const AUDITS_INCONCLUSIVE = "audits_inconclusive";
const AUDIT_SEQUENCE = "audit_sequence";
const LAST_PASS = "audit_last_pass_ms";

export type AuditResult = Extract<PeerToDirectory, { type: "audit_result" }>;

/** One holder's outstanding (or just judged) audit. */
export interface AuditRecord {
  jobId: string;
  nodeId: string;
  cid: string;
  nonce: string;
  offset: number;
  length: number;
  sentMs: number;
  deadlineMs: number;
  /** null: not answered yet; the proof (hex); or `!<code>` for a failure. */
  answer: string | null;
}

/** How one holder came out of a judged round. */
export interface AuditVerdict {
  jobId: string;
  nodeId: string;
  cid: string;
  outcome: "passed" | "failed" | "inconclusive" | "skipped";
  reason?: string;
}

export interface AuditorOptions {
  directory: Directory;
  sql: Sql;
  params: NetworkParams;
  /** Uniform [0, 1) for the range's offset. The nonce and the sampling point always come from crypto.getRandomValues. */
  random: () => number;
  send(nodeId: string, message: DirectoryToPeer): boolean;
}

type AuditRow = {
  job_id: string;
  node_id: string;
  cid: string;
  nonce: string;
  offset_bytes: number;
  length_bytes: number;
  sent_ms: number;
  deadline_ms: number;
  answer: string | null;
};

const fromRow = (r: AuditRow): AuditRecord => ({
  jobId: r.job_id,
  nodeId: r.node_id,
  cid: r.cid,
  nonce: r.nonce,
  offset: r.offset_bytes,
  length: r.length_bytes,
  sentMs: r.sent_ms,
  deadlineMs: r.deadline_ms,
  answer: r.answer,
});

export interface AuditPass {
  /** node ID → audit ids sent to it in this pass. */
  sent: Map<string, string[]>;
  verdicts: AuditVerdict[];
  /** When the next pass is due without news (a deadline or the next interval); null: nothing. */
  nextDueMs: number | null;
}

export class Auditor {
  constructor(private readonly opts: AuditorOptions) {}

  /** One pass at `nowMs`: judges rounds that are complete or overdue, then (when due, or `force`) starts new ones. */
  run(nowMs: number, force = false): AuditPass {
    const { sql, params } = this.opts;
    const verdicts = this.judgeDue(nowMs);
    const sent = new Map<string, string[]>();
    const last = readMeta(sql, LAST_PASS);
    if (last === null && !force) {
      // The object's first pass only starts the clock: a fresh region (or a test) is not audited at once.
      writeMeta(sql, LAST_PASS, String(nowMs));
    } else if (force || nowMs >= Number(last) + params.auditIntervalMs) {
      writeMeta(sql, LAST_PASS, String(nowMs));
      this.startRounds(nowMs, sent);
    }
    const lastPassMs = Number(readMeta(sql, LAST_PASS));
    const deadline = sql.exec<{ d: number | null }>(`SELECT min(deadline_ms) AS d FROM audits`).one().d;
    const nextPassMs = this.opts.directory.liveStoragePeers() > 0 ? lastPassMs + params.auditIntervalMs : null;
    const nextDueMs = Math.min(deadline ?? Infinity, nextPassMs ?? Infinity);
    return { sent, verdicts, nextDueMs: Number.isFinite(nextDueMs) ? nextDueMs : null };
  }

  /**
   * A holder's `audit_result`. Answers to audits that are gone (judged
   * already), were not sent to this peer, or were answered before are
   * stale and ignored. Judges the round at once when it was the last
   * answer. Returns the verdicts (empty when the round is still open).
   */
  onResult(sender: PeerRecord, result: AuditResult): AuditVerdict[] | null {
    const { sql } = this.opts;
    const answer = result.ok ? result.proof : `!${result.code}`;
    const updated = sql
      .exec<{ job_id: string }>(`UPDATE audits SET answer = ? WHERE job_id = ? AND node_id = ? AND cid = ? AND answer IS NULL RETURNING job_id`, answer, result.jobId, sender.nodeId, result.cid)
      .toArray();
    if (updated.length === 0) return null;
    const open = sql.exec<{ n: number }>(`SELECT count(*) AS n FROM audits WHERE job_id = ? AND answer IS NULL`, result.jobId).one().n;
    return open === 0 ? this.judge(result.jobId) : [];
  }

  /** Outstanding audits, oldest first (for tests and operators). */
  outstanding(limit: number): AuditRecord[] {
    return this.opts.sql.exec<AuditRow>(`SELECT * FROM audits ORDER BY sent_ms, job_id, node_id LIMIT ?`, limit).toArray().map(fromRow);
  }

  summary(): AuditSummary {
    const { sql, directory } = this.opts;
    const counter = (name: string) => directory.replicaStore.counter(name);
    return {
      pendingAudits: sql.exec<{ n: number }>(`SELECT count(*) AS n FROM audits WHERE answer IS NULL`).one().n,
      passed: counter(AUDITS_PASSED),
      failed: counter(AUDITS_FAILED),
      inconclusive: counter(AUDITS_INCONCLUSIVE),
      lowReputationPeers: directory.peerStore.countLowReputation(LOW_REPUTATION),
    };
  }

  private judgeDue(nowMs: number): AuditVerdict[] {
    const due = this.opts.sql.exec<{ job_id: string }>(`SELECT job_id FROM audits GROUP BY job_id HAVING min(deadline_ms) <= ? OR sum(answer IS NULL) = 0`, nowMs).toArray();
    return due.flatMap((r) => this.judge(r.job_id));
  }

  /** Judges one round (see the module comment) and forgets it. */
  private judge(jobId: string): AuditVerdict[] {
    const { sql, directory } = this.opts;
    const rows = sql.exec<AuditRow>(`SELECT * FROM audits WHERE job_id = ?`, jobId).toArray().map(fromRow);
    sql.exec(`DELETE FROM audits WHERE job_id = ?`, jobId);
    const proofs = rows.flatMap((r) => (r.answer !== null && !r.answer.startsWith("!") ? [r.answer] : []));
    const tally = new Map<string, number>();
    for (const p of proofs) tally.set(p, (tally.get(p) ?? 0) + 1);
    let best: string | null = null;
    for (const [p, n] of tally) if (best === null || n > tally.get(best)!) best = p;
    const majority = best !== null && tally.get(best)! * 2 > proofs.length ? best : null;

    const verdicts: AuditVerdict[] = [];
    for (const r of rows) {
      const base = { jobId, nodeId: r.nodeId, cid: r.cid };
      let verdict: AuditVerdict;
      if (r.answer === null) {
        verdict = directory.stateOf(r.nodeId) === "alive" ? { ...base, outcome: "failed", reason: "timeout" } : { ...base, outcome: "skipped", reason: "not_alive" };
      } else if (r.answer.startsWith("!")) {
        verdict = { ...base, outcome: "failed", reason: r.answer.slice(1) };
      } else if (majority === null) {
        verdict = { ...base, outcome: "inconclusive", reason: "no_majority" };
      } else {
        verdict = r.answer === majority ? { ...base, outcome: "passed" } : { ...base, outcome: "failed", reason: "wrong_proof" };
      }
      this.apply(verdict);
      verdicts.push(verdict);
    }
    return verdicts;
  }

  private apply(verdict: AuditVerdict): void {
    const { directory } = this.opts;
    if (verdict.outcome === "passed") {
      directory.recordAudit(verdict.nodeId, verdict.cid, true);
      directory.replicaStore.addCounter(AUDITS_PASSED, 1);
    } else if (verdict.outcome === "failed") {
      directory.recordAudit(verdict.nodeId, verdict.cid, false);
      directory.replicaStore.addCounter(AUDITS_FAILED, 1);
      // An honest holder with a bad or lost copy deletes it; a disconnected one is told again by its next failed audit.
      this.opts.send(verdict.nodeId, { type: "trim", cids: [verdict.cid] });
    } else if (verdict.outcome === "inconclusive") {
      directory.replicaStore.addCounter(AUDITS_INCONCLUSIVE, 1);
    }
  }

  /** Starts up to auditChunksPerPass rounds from a random point of the CID space. */
  private startRounds(nowMs: number, sent: Map<string, string[]>): void {
    const { sql, params, directory } = this.opts;
    const busy = new Map<string, number>();
    for (const r of sql.exec<{ node_id: string; n: number }>(`SELECT node_id, count(*) AS n FROM audits GROUP BY node_id`).toArray()) busy.set(r.node_id, r.n);
    const free = (nodeId: string) => (busy.get(nodeId) ?? 0) < params.auditsPerPeerPerPass;
    const from = cidFromSha256(randomBytes(32));
    const scan = params.auditChunksPerPass * 4;
    const pick = (where: string) =>
      sql
        .exec<{ cid: string; size_bytes: number | null }>(
          `SELECT cid, size_bytes FROM pins WHERE ${where} AND cold = 0
             AND NOT EXISTS (SELECT 1 FROM repair_jobs j WHERE j.cid = pins.cid)
             AND NOT EXISTS (SELECT 1 FROM audits a WHERE a.cid = pins.cid)
           ORDER BY cid LIMIT ?`,
          from,
          scan,
        )
        .toArray();
    const candidates = pick("cid >= ?");
    if (candidates.length < scan) candidates.push(...pick("cid < ?").slice(0, scan - candidates.length));

    let rounds = 0;
    for (const c of candidates) {
      if (rounds >= params.auditChunksPerPass) break;
      const holders = directory.liveHolders(c.cid).filter((h) => h.state === "alive" && free(h.nodeId));
      if (holders.length === 0) continue;
      const jobId = `a${this.nextSequence()}`;
      const nonce = toHex(randomBytes(AUDIT_NONCE_BYTES));
      const length = c.size_bytes === null ? params.auditRangeBytes : Math.min(params.auditRangeBytes, c.size_bytes);
      const offset = c.size_bytes === null ? 0 : Math.floor(this.opts.random() * (c.size_bytes - length + 1));
      const deadlineMs = nowMs + params.auditTimeoutMs;
      let any = false;
      for (const h of holders) {
        if (!this.opts.send(h.nodeId, { type: "audit", jobId, cid: c.cid, nonce, offset, length, timeoutMs: params.auditTimeoutMs })) continue;
        sql.exec(
          `INSERT INTO audits (job_id, node_id, cid, nonce, offset_bytes, length_bytes, sent_ms, deadline_ms, answer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
          jobId,
          h.nodeId,
          c.cid,
          nonce,
          offset,
          length,
          nowMs,
          deadlineMs,
        );
        busy.set(h.nodeId, (busy.get(h.nodeId) ?? 0) + 1);
        sent.set(h.nodeId, [...(sent.get(h.nodeId) ?? []), jobId]);
        any = true;
      }
      if (any) rounds++;
    }
  }

  private nextSequence(): number {
    return this.opts.sql.exec<{ value: number }>(`INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value`, AUDIT_SEQUENCE).one().value;
  }
}

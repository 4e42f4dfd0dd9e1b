/**
 * The classic birth–death model of a replicated object (as in the RAID
 * MTTDL literature, e.g. Patterson–Gibson–Katz 1988 for r = 2, and the
 * replicated-storage analyses after it): state k = live replicas; each
 * replica dies independently at rate λ, each missing one is re-created at
 * rate μ (repairs of several missing replicas run in parallel); state 0 is
 * data loss.
 *
 * The simulator measures the repair time it actually achieves (detection
 * timeout + queueing + transfer) and feeds μ = 1 / mean time-to-repair in
 * here, which gives a loss estimate where losses are far too rare to
 * observe by sampling. Two approximations, stated wherever the number is
 * printed: repair times are taken as exponential with the measured mean
 * (the real ones are nearly constant, so this overstates loss), and
 * P(loss within T) = 1 − exp(−T / MTTDL), accurate when μ ≫ λ because the
 * chain then forgets its start long before it is absorbed.
 */

/**
 * Mean time to data loss from the full state r, in the unit of 1/λ.
 * Mean passage time from k down to k − 1: τ_r = 1/(rλ), τ_k = (1 + (r−k)μ·τ_{k+1}) / (kλ);
 * MTTDL = Σ τ_k. Every term is positive, so it stays accurate for the enormous values of large r.
 */
export function meanTimeToDataLoss(replicas: number, failureRate: number, repairRate: number): number {
  if (!Number.isInteger(replicas) || replicas < 1) throw new RangeError(`markov: replicas must be a positive integer, got ${replicas}`);
  if (!(failureRate >= 0) || !(repairRate >= 0)) throw new RangeError("markov: rates must be non-negative");
  if (failureRate === 0) return Infinity;
  let tau = 0;
  let total = 0;
  for (let k = replicas; k >= 1; k--) {
    tau = (1 + (replicas - k) * repairRate * tau) / (k * failureRate);
    total += tau;
  }
  return total;
}

/** P(loss within `horizon`) ≈ 1 − exp(−horizon / MTTDL), same time unit as MTTDL. */
export function lossProbability(horizon: number, mttdl: number): number {
  if (mttdl === Infinity) return 0;
  return -Math.expm1(-horizon / mttdl);
}

/** P(at least one of n independent parts lost) given each part's probability p, without cancellation for tiny p. */
export function anyOfLost(p: number, n: number): number {
  if (p >= 1) return 1;
  return -Math.expm1(n * Math.log1p(-p));
}

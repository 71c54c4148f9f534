// Exponential backoff with jitter for reconnects and retries.

export interface BackoffOptions {
  /** Delay of the first retry before jitter, in ms. */
  initialMs: number;
  /** Cap of the delay before jitter, in ms. */
  maxMs: number;
  /** Growth per attempt. */
  factor: number;
  /** Fraction of the delay that is random, 0..=1: the delay is uniform in
   * [base × (1 − jitter), base]. 1 is "full jitter". */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 250,
  maxMs: 30_000,
  factor: 2,
  jitter: 0.5,
};

/** The delay before retry number `attempt` (0-based). `random` returns a
 * number in [0, 1) (Math.random by default; tests pass their own). */
export function backoffDelay(
  attempt: number,
  o: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const base = Math.min(o.maxMs, o.initialMs * Math.pow(o.factor, Math.max(0, attempt)));
  const jitter = Math.min(1, Math.max(0, o.jitter));
  return Math.round(base * (1 - jitter * random()));
}

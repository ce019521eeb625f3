/**
 * When a soft bounce is tried again, and when it has been soft for long enough to turn hard.
 *
 *   interval(n) = min(initial_retry × backoff_factor^(n-1), max_retry_interval), ± jitter
 *
 * for the n-th retry. A recipient expires (soft turned hard, status 5.4.7) when it has used
 * `max_retries` retries or has been queued `max_time_in_queue` — whichever comes first. A retry
 * that would fall after the time limit is moved to the limit itself, so the message gets its
 * whole lifetime and one last try. Randomness is injected: tests pass a fixed source.
 */
import type { BounceProfile } from './bounce-profile.js';

export type RetryDecision =
  | { readonly kind: 'retry'; readonly at: number; readonly interval: number }
  | { readonly kind: 'expire'; readonly reason: 'max-retries' | 'max-time-in-queue' };

export interface RetryFacts {
  /** Attempts made so far for this recipient, the one that just failed included (≥ 1). */
  readonly attempts: number;
  /** When the message was received (ms since the epoch). */
  readonly receivedAt: number;
  readonly now: number;
}

/** The interval before retry number `n` (1-based), jittered by `random()` ∈ [0, 1): 0.5 = none. */
export function retryInterval(profile: BounceProfile, n: number, random: () => number): number {
  const base = Math.min(
    profile.maxRetryIntervalMs,
    profile.initialRetryMs * profile.backoffFactor ** Math.max(0, n - 1),
  );
  const jittered = base * (1 + profile.jitter * (2 * random() - 1));
  return Math.max(1000, Math.round(jittered));
}

/** Retry (and when) or expire, after a soft bounce. */
export function nextRetry(profile: BounceProfile, facts: RetryFacts, random: () => number): RetryDecision {
  const retriesUsed = facts.attempts - 1;
  if (retriesUsed >= profile.maxRetries) return { kind: 'expire', reason: 'max-retries' };
  const deadline = facts.receivedAt + profile.maxTimeInQueueMs;
  if (facts.now >= deadline) return { kind: 'expire', reason: 'max-time-in-queue' };
  const interval = retryInterval(profile, retriesUsed + 1, random);
  const at = Math.min(facts.now + interval, deadline);
  return { kind: 'retry', at, interval: at - facts.now };
}

/** When the recipient will be given up at the latest (RFC 3464 §2.3.8 Will-Retry-Until). */
export function willRetryUntil(profile: BounceProfile, receivedAt: number): number {
  return receivedAt + profile.maxTimeInQueueMs;
}

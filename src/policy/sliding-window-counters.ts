/**
 * InProcessCounters: the `Counters` of one node, as sliding windows of time buckets (each window
 * is cut into 60 buckets, so "per hour" counts to the minute: an event leaves the window between
 * 59 and 60 minutes after it happened). Memory is bounded: empty windows are dropped, and past
 * `maxKeys` the least recently used key is forgotten (it can only make a limit more lenient, never
 * refuse someone who is under it).
 *
 * A cluster shares its counters through a Redis implementation of the same interface later; this
 * class assumes nothing a Redis one could not do (no callbacks, the time comes from the caller).
 */
import type { Counters } from './facts.js';

export interface InProcessCountersOptions {
  /** Buckets per window (default 60). */
  readonly buckets?: number;
  /** Keys kept at most (default 100,000). */
  readonly maxKeys?: number;
}

interface Window {
  readonly bucketMs: number;
  /** bucket index (floor(time / bucketMs)) → amount */
  readonly buckets: Map<number, number>;
}

export class InProcessCounters implements Counters {
  private readonly windows = new Map<string, Window>();
  private readonly bucketsPerWindow: number;
  private readonly maxKeys: number;

  constructor(opts: InProcessCountersOptions = {}) {
    this.bucketsPerWindow = opts.buckets ?? 60;
    this.maxKeys = opts.maxKeys ?? 100_000;
  }

  /** Number of keys held (for tests and metrics). */
  get size(): number {
    return this.windows.size;
  }

  // Async by contract (a shared store answers later); the state changes before the first await,
  // so two hits in a row on one node always see each other.
  async hit(key: string, windowMs: number, now: number, amount: number): Promise<number> {
    const id = `${windowMs} ${key}`;
    let w = this.windows.get(id);
    if (w === undefined) {
      if (amount === 0) return 0;
      w = { bucketMs: Math.max(1, Math.ceil(windowMs / this.bucketsPerWindow)), buckets: new Map() };
      if (this.windows.size >= this.maxKeys) {
        const oldest = this.windows.keys().next().value;
        if (oldest !== undefined) this.windows.delete(oldest);
      }
    } else {
      this.windows.delete(id); // re-inserted below: Map order is least recently used first
    }
    const current = Math.floor(now / w.bucketMs);
    const oldestKept = current - this.bucketsPerWindow + 1;
    let total = 0;
    for (const [index, n] of w.buckets) {
      if (index < oldestKept) w.buckets.delete(index);
      else total += n;
    }
    if (amount !== 0) {
      w.buckets.set(current, (w.buckets.get(current) ?? 0) + amount);
      total += amount;
    }
    total = Math.max(0, total);
    if (total > 0) this.windows.set(id, w);
    return total;
  }
}

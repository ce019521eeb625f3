/**
 * Retention: tracking events, and finished messages with their attempts, older than the
 * configured period are deleted — at start and then every `intervalMs`. Queued and held messages
 * are never touched.
 */
import type { QueueStore } from '../store/queue-store.js';

export interface TrackingRetentionOptions {
  readonly store: QueueStore;
  /** How long events and finished messages are kept. */
  readonly retentionMs: number;
  readonly clock: () => number;
  /** How often to prune; default hourly. */
  readonly intervalMs?: number;
  readonly onPruned?: (pruned: { events: number; messages: number }) => void;
  readonly onError?: (err: unknown) => void;
}

export class TrackingRetention {
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: TrackingRetentionOptions) {}

  start(): void {
    if (this.timer !== null) return;
    this.pruneNow();
    this.timer = setInterval(() => this.pruneNow(), this.opts.intervalMs ?? 3_600_000);
    this.timer.unref();
  }

  /** Deletes what is older than the retention period now. */
  pruneNow(): { events: number; messages: number } {
    try {
      const pruned = this.opts.store.pruneTracking(this.opts.clock() - this.opts.retentionMs);
      if (pruned.events + pruned.messages > 0) this.opts.onPruned?.(pruned);
      return pruned;
    } catch (err) {
      this.opts.onError?.(err);
      return { events: 0, messages: 0 };
    }
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

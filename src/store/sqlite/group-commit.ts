/**
 * Group commit: many sessions finish DATA within the same event-loop turn, and each needs an
 * fsync before its "250 queued". Instead of one fsync each, commits submitted during a turn are
 * collected and written by one synchronous batch (one transaction, one fsync) in the following
 * check phase (setImmediate); then every submitter's promise settles with the batch's outcome.
 *
 * While a batch runs the event loop is blocked (better-sqlite3 is synchronous), so commits that
 * arrive meanwhile pile up and form the next, larger batch: batching adapts to the load by itself.
 */

export interface GroupCommitStats {
  /** Batches written (successful or not). */
  readonly batches: number;
  /** Items whose batch succeeded. */
  readonly committed: number;
  /** Items whose batch failed. */
  readonly failed: number;
  readonly largestBatch: number;
}

interface PendingCommit<Item> {
  readonly item: Item;
  readonly resolve: () => void;
  readonly reject: (reason: unknown) => void;
}

export class GroupCommitter<Item> {
  private pending: PendingCommit<Item>[] = [];
  private scheduled: NodeJS.Immediate | null = null;
  private batches = 0;
  private committed = 0;
  private failed = 0;
  private largestBatch = 0;

  constructor(
    /** Writes and makes durable all items at once; throws when nothing of the batch was kept. */
    private readonly writeBatch: (items: readonly Item[]) => void,
    /** Cleans up after a failed batch and returns the reason every submitter is rejected with. */
    private readonly failBatch: (items: readonly Item[], error: unknown) => unknown,
  ) {}

  /** Resolves once `item` is durable, together with everything else submitted in this turn. */
  submit(item: Item): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.scheduled ??= setImmediate(() => {
        this.scheduled = null;
        this.flush();
      });
    });
  }

  /** Writes whatever is pending now, synchronously (used by close). */
  flush(): void {
    if (this.scheduled !== null) {
      clearImmediate(this.scheduled);
      this.scheduled = null;
    }
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    const items = batch.map((commit) => commit.item);
    this.batches += 1;
    this.largestBatch = Math.max(this.largestBatch, batch.length);
    try {
      this.writeBatch(items);
    } catch (error) {
      this.failed += batch.length;
      const reason = this.failBatch(items, error);
      for (const commit of batch) commit.reject(reason);
      return;
    }
    this.committed += batch.length;
    for (const commit of batch) commit.resolve();
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  stats(): GroupCommitStats {
    return {
      batches: this.batches,
      committed: this.committed,
      failed: this.failed,
      largestBatch: this.largestBatch,
    };
  }
}

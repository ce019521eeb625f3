/**
 * Group commit: many sessions finish DATA close together, and each needs its message on stable
 * storage before its "250 queued". Commits are written together in one transaction WITHOUT an
 * fsync; then one asynchronous fsync (`sync`, run on libuv's thread pool) makes every transaction
 * written before it durable at once, and their submitters' promises settle.
 *
 * One fsync is in flight at a time (Postgres-style). While it runs, new commits only queue up;
 * when it completes, everything queued meanwhile is written as ONE transaction and the next fsync
 * starts. So batches grow with the load by themselves, and a batch of n messages costs one
 * transaction: the index and table pages the n messages share are written to the WAL once, not
 * once per event-loop turn (bench/README.md: this halved the WAL bytes per message). When no
 * fsync is running, a commit is written in the next check phase (setImmediate), so a lone
 * client waits for nothing but its own fsync. Without `sync`, `writeBatch` must make the batch
 * durable itself (synchronously), as with SQLite's synchronous=FULL.
 */

export interface GroupCommitStats {
  /** Durability points (fsyncs) completed, successful or not. */
  readonly batches: number;
  /** Items made durable. */
  readonly committed: number;
  /** Items whose write or fsync failed. */
  readonly failed: number;
  /** Most items made durable by one fsync. */
  readonly largestBatch: number;
}

interface PendingCommit<Item> {
  readonly item: Item;
  readonly resolve: () => void;
  readonly reject: (reason: unknown) => void;
}

export interface GroupCommitterOptions<Item> {
  /** Writes all items in one transaction; throws when nothing of the batch was kept. */
  readonly writeBatch: (items: readonly Item[]) => void;
  /** Cleans up after a failed write or fsync and returns the reason every submitter is rejected with. */
  readonly failBatch: (items: readonly Item[], error: unknown) => unknown;
  /** Makes everything written so far durable (an fsync), asynchronously. Absent: writeBatch is durable by itself. */
  readonly sync?: () => Promise<void>;
  /** The same, synchronously: used when closing. */
  readonly syncNow?: () => void;
  /** Called with the items once they are durable (before their promises resolve). */
  readonly onDurable?: (items: readonly Item[]) => void;
}

export class GroupCommitter<Item> {
  private pending: PendingCommit<Item>[] = [];
  /** Written, waiting for the next fsync. */
  private written: PendingCommit<Item>[] = [];
  private scheduled: NodeJS.Immediate | null = null;
  private syncing: Promise<void> | null = null;
  private batches = 0;
  private committed = 0;
  private failed = 0;
  private largestBatch = 0;

  constructor(private readonly opts: GroupCommitterOptions<Item>) {}

  /** Resolves once `item` is durable, together with everything else written before the same fsync. */
  submit(item: Item): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      // While an fsync runs, its completion schedules what queued up (startSync's finally).
      if (this.syncing === null) this.scheduleWrite();
    });
  }

  /**
   * Writes the pending batch and starts its fsync in the next check phase: after the poll phase
   * has handled every socket that became readable meanwhile, so the sessions finishing DATA in
   * this loop iteration join the batch instead of waiting for the next fsync.
   */
  private scheduleWrite(): void {
    this.scheduled ??= setImmediate(() => {
      this.scheduled = null;
      if (this.syncing !== null) return;
      this.write();
      this.startSync();
    });
  }

  /** Writes what is pending and makes everything durable, synchronously (used by close). */
  flush(): void {
    if (this.scheduled !== null) {
      clearImmediate(this.scheduled);
      this.scheduled = null;
    }
    this.write();
    if (this.written.length === 0) return;
    const batch = this.written;
    this.written = [];
    try {
      this.opts.syncNow?.();
    } catch (error) {
      this.settleFailed(batch, error);
      return;
    }
    this.settleDurable(batch);
  }

  /** Waits until nothing is pending or in flight (for close). */
  async drain(): Promise<void> {
    while (this.syncing) await this.syncing;
  }

  private write(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    try {
      this.opts.writeBatch(batch.map((c) => c.item));
    } catch (error) {
      this.settleFailed(batch, error);
      return;
    }
    if (this.opts.sync) {
      this.written.push(...batch);
    } else {
      this.settleDurable(batch);
    }
  }

  /** One fsync at a time; what was submitted while it ran is written in one batch after it. */
  private startSync(): void {
    const sync = this.opts.sync;
    if (!sync || this.syncing || this.written.length === 0) return;
    const batch = this.written;
    this.written = [];
    this.syncing = sync().then(
      () => this.settleDurable(batch),
      (error: unknown) => this.settleFailed(batch, error),
    ).finally(() => {
      this.syncing = null;
      if (this.pending.length > 0) this.scheduleWrite();
    });
  }

  private settleDurable(batch: PendingCommit<Item>[]): void {
    this.batches += 1;
    this.largestBatch = Math.max(this.largestBatch, batch.length);
    this.committed += batch.length;
    this.opts.onDurable?.(batch.map((c) => c.item));
    for (const c of batch) c.resolve();
  }

  private settleFailed(batch: PendingCommit<Item>[], error: unknown): void {
    this.batches += 1;
    this.failed += batch.length;
    const reason = this.opts.failBatch(batch.map((c) => c.item), error);
    for (const c of batch) c.reject(reason);
  }

  get pendingCount(): number {
    return this.pending.length + this.written.length;
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

/**
 * Free space on the filesystem that holds the queue, for admission decisions made per MAIL/DATA
 * command. A statfs per SMTP command would be wasteful, so this caches one reading and refreshes
 * it lazily: a read older than `refreshMs` returns the cached value and starts one asynchronous
 * `fs.statfs` in the background. No timer, so an idle gateway does no work and the process can exit.
 */
import fs from 'node:fs';

export interface FreeSpaceReading {
  /** Bytes available to unprivileged users (bavail * bsize) minus the reserve, or null when unknown. */
  readonly available: number | null;
}

export class FreeSpaceMonitor {
  private availableBytes: number | null = null;
  private readAt = -Infinity;
  private refreshing = false;

  constructor(
    private readonly directory: string,
    /** Bytes that must stay free on the filesystem; admission fails below this. */
    private readonly minFreeBytes: number,
    private readonly refreshMs = 1000,
    private readonly monotonicNow: () => number = () => performance.now(),
  ) {
    this.refreshNow();
  }

  /** The latest reading; starts a background refresh when it is older than `refreshMs`. */
  current(): FreeSpaceReading {
    if (this.monotonicNow() - this.readAt >= this.refreshMs) this.refreshInBackground();
    return { available: this.availableBytes === null ? null : this.availableBytes - this.minFreeBytes };
  }

  /** Reads synchronously (at open, and for tests that need a fresh value). */
  refreshNow(): void {
    try {
      this.record(fs.statfsSync(this.directory));
    } catch {
      this.availableBytes = null;
      this.readAt = this.monotonicNow();
    }
  }

  private refreshInBackground(): void {
    if (this.refreshing) return;
    this.refreshing = true;
    fs.statfs(this.directory, (error, stats) => {
      this.refreshing = false;
      if (error) {
        this.availableBytes = null;
        this.readAt = this.monotonicNow();
      } else {
        this.record(stats);
      }
    });
  }

  private record(stats: fs.StatsFs): void {
    this.availableBytes = stats.bavail * stats.bsize;
    this.readAt = this.monotonicNow();
  }
}

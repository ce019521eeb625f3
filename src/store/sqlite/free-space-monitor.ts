/**
 * Free space on the filesystem that holds the queue, for admission decisions made per MAIL/DATA
 * command. A statfs per SMTP command would be wasteful, so this caches one reading and refreshes
 * it lazily: a read older than `refreshMs` returns the cached value and starts one asynchronous
 * `fs.statfs` in the background. No timer, so an idle gateway does no work and the process can exit.
 *
 * A refusal is never made on a cached reading: when the cache says "not enough", the monitor reads
 * again at once (one statfs, on the rare path), so service resumes the moment space returns
 * instead of up to `refreshMs` later.
 */
import fs from 'node:fs';

/** How the monitor reads the file system; tests pass their own. */
export interface StatfsReader {
  readSync(directory: string): fs.StatsFs;
  read(directory: string, done: (error: Error | null, stats: fs.StatsFs) => void): void;
}

const nodeStatfs: StatfsReader = {
  readSync: (directory) => fs.statfsSync(directory),
  read: (directory, done) => fs.statfs(directory, done),
};

export interface FreeSpaceMonitorOptions {
  readonly directory: string;
  /** Bytes that must stay free on the filesystem; admission fails below this. */
  readonly minFreeBytes: number;
  readonly refreshMs?: number;
  readonly monotonicNow?: () => number;
  readonly statfs?: StatfsReader;
}

export class FreeSpaceMonitor {
  private availableBytes: number | null = null;
  private readAt = -Infinity;
  private refreshing = false;
  private readonly directory: string;
  private readonly minFreeBytes: number;
  private readonly refreshMs: number;
  private readonly monotonicNow: () => number;
  private readonly statfs: StatfsReader;

  constructor(options: FreeSpaceMonitorOptions) {
    this.directory = options.directory;
    this.minFreeBytes = options.minFreeBytes;
    this.refreshMs = options.refreshMs ?? 1000;
    this.monotonicNow = options.monotonicNow ?? (() => performance.now());
    this.statfs = options.statfs ?? nodeStatfs;
    this.refreshNow();
  }

  /**
   * Bytes available beyond the reserve (may be negative), or null when unknown. `needed` is what
   * the caller is about to ask for: a cached reading that cannot cover it is re-read first.
   */
  available(needed: number): number | null {
    if (this.monotonicNow() - this.readAt >= this.refreshMs) this.refreshInBackground();
    let available = this.beyondReserve();
    if (available !== null && (available <= 0 || needed > available)) {
      this.refreshNow();
      available = this.beyondReserve();
    }
    return available;
  }

  /** Reads synchronously (at open, and before a refusal). */
  private refreshNow(): void {
    try {
      this.record(this.statfs.readSync(this.directory));
    } catch {
      this.availableBytes = null;
      this.readAt = this.monotonicNow();
    }
  }

  private beyondReserve(): number | null {
    return this.availableBytes === null ? null : this.availableBytes - this.minFreeBytes;
  }

  private refreshInBackground(): void {
    if (this.refreshing) return;
    this.refreshing = true;
    this.statfs.read(this.directory, (error, stats) => {
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

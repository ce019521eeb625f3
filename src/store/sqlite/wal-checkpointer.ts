/**
 * WAL checkpoints on a worker thread. SQLite's automatic checkpoint runs inside the COMMIT that
 * crosses its threshold, on the event loop: it copies up to a thousand pages into the database
 * and fsyncs the WAL and the database while every session waits. Here a second connection, on a
 * thread of its own (the machine's other core), runs a PASSIVE checkpoint every
 * CHECKPOINT_INTERVAL_MS: it never blocks the writer, and the writer starts the WAL over once a
 * checkpoint has caught up (WAL mode's restart), so the file stays small.
 *
 * The main connection keeps an automatic checkpoint at a much higher threshold as a safety
 * valve (a checkpointer that cannot keep up, or died), and falls back to SQLite's default when
 * the worker fails.
 *
 * Durability is unchanged: with synchronous=NORMAL a checkpoint fsyncs the WAL before copying
 * and the database after (SQLite's order), whichever connection runs it.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** How often the worker checkpoints (a PASSIVE checkpoint with nothing new to copy is cheap). */
export const CHECKPOINT_INTERVAL_MS = 100;
/** The main connection's own automatic checkpoint while the worker runs: 64 MiB of WAL. */
export const SAFETY_VALVE_PAGES = 16384;
/** SQLite's default, when there is no worker. */
export const DEFAULT_AUTOCHECKPOINT_PAGES = 1000;

// CommonJS in an eval'd worker: the same better-sqlite3 the store uses, by absolute path.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { timeout: 5000 });
db.pragma('synchronous = NORMAL');
db.pragma('wal_autocheckpoint = 0');
let checkpoints = 0;
let pages = 0;
const timer = setInterval(() => {
  try {
    const r = db.pragma('wal_checkpoint(PASSIVE)')[0];
    if (r.checkpointed > 0) { checkpoints++; pages += r.checkpointed; }
    parentPort.postMessage({ kind: 'ok', checkpoints, pages, log: r.log, checkpointed: r.checkpointed });
  } catch (error) {
    parentPort.postMessage({ kind: 'error', message: String(error && error.message || error) });
  }
}, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m !== 'close') return;
  clearInterval(timer);
  try { db.close(); } catch {}
  parentPort.close();
});
`;

export interface CheckpointStats {
  /** Checkpoints that copied something. */
  readonly checkpoints: number;
  /** Pages (WAL frames) copied into the database by them. */
  readonly pages: number;
  /** The last error the worker reported, or null. */
  readonly lastError: string | null;
}

interface WorkerReport {
  readonly kind: 'ok' | 'error';
  readonly checkpoints?: number;
  readonly pages?: number;
  readonly message?: string;
}

export class WalCheckpointer {
  private readonly worker: Worker;
  private stats: CheckpointStats = { checkpoints: 0, pages: 0, lastError: null };
  private exited: Promise<void>;
  private closing = false;

  /** Starts the worker for the database at `path`; `onFailure` is told once if it dies. */
  constructor(path: string, onFailure: (error: unknown) => void) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { driver, path, intervalMs: CHECKPOINT_INTERVAL_MS },
      // tsx and test flags are for the main thread's modules, not this CommonJS snippet.
      execArgv: [],
    });
    this.worker.unref(); // never the reason the process stays up
    this.worker.on('message', (r: WorkerReport) => {
      if (r.kind === 'ok') {
        this.stats = { checkpoints: r.checkpoints ?? 0, pages: r.pages ?? 0, lastError: null };
      } else {
        this.stats = { ...this.stats, lastError: r.message ?? 'unknown error' };
      }
    });
    let failed = false;
    const fail = (error: unknown): void => {
      if (failed || this.closing) return;
      failed = true;
      onFailure(error);
    };
    this.worker.on('error', fail);
    this.exited = new Promise((resolve) => {
      this.worker.on('exit', (code) => {
        if (code !== 0) fail(new Error(`checkpoint worker exited with code ${code}`));
        resolve();
      });
    });
  }

  current(): CheckpointStats {
    return this.stats;
  }

  /** Stops the worker (its connection closes first; a checkpoint in progress finishes). */
  async close(): Promise<void> {
    this.closing = true;
    this.worker.postMessage('close');
    const timeout = setTimeout(() => void this.worker.terminate(), 5000);
    await this.exited;
    clearTimeout(timeout);
  }
}

/**
 * Clean-up for the benchmarks: what they start (servers, sinks, temp directories) is stopped and
 * removed at the end, on an error, and on Ctrl-C / SIGTERM. Each registered step has an async
 * form (the normal way: SIGTERM and wait) and a synchronous last resort for process 'exit'.
 */
import { rmSync } from 'node:fs';
import { abortClients } from './smtp-load.js';

interface Step {
  readonly name: string;
  readonly stop: () => Promise<void>;
  readonly kill: () => void;
  /** Stopping has begun. */
  done: boolean;
}

/** Steps whose stop has not finished yet: the exit handler kills them (kill is idempotent). */
const unfinished = new Set<Step>();

const steps: Step[] = [];

/** Registers something to stop; the returned function stops it now (once) and unregisters it. */
export function onCleanup(name: string, stop: () => Promise<void>, kill: () => void): () => Promise<void> {
  const step: Step = { name, stop, kill, done: false };
  steps.push(step);
  unfinished.add(step);
  return async () => {
    if (step.done) return;
    step.done = true;
    try {
      await stop();
      unfinished.delete(step);
    } finally {
      const i = steps.indexOf(step);
      if (i >= 0) steps.splice(i, 1);
    }
  };
}

/** A temp directory removed at clean-up. */
export function removeDirOnCleanup(dir: string): () => Promise<void> {
  const rm = (): void => rmSync(dir, { recursive: true, force: true });
  return onCleanup(`rm ${dir}`, async () => rm(), rm);
}

/** Stops everything still registered, newest first. */
export async function cleanupAll(): Promise<void> {
  for (const step of [...steps].reverse()) {
    if (step.done) continue;
    step.done = true;
    try {
      await step.stop();
      unfinished.delete(step);
    } catch (err) {
      process.stderr.write(`bench: clean-up of ${step.name} failed: ${err instanceof Error ? err.message : String(err)}\n`);
      try { step.kill(); } catch { /* last resort below */ }
    }
  }
  steps.length = 0;
}

let installed = false;

/** Ctrl-C / SIGTERM close the client connections and clean up; a second one exits at once. */
export function installSignalHandlers(tag: string, what = 'closing client connections, stopping the servers'): void {
  if (installed) return;
  installed = true;
  let interrupted = 0;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      interrupted++;
      if (interrupted > 1) process.exit(130);
      process.stderr.write(`\n${tag}: ${sig}: ${what}…\n`);
      abortClients();
      void cleanupAll().finally(() => process.exit(130));
    });
  }
  // Last resort if the process exits some other way: nothing orphaned, no temp directory left.
  process.on('exit', () => {
    for (const step of [...unfinished].reverse()) {
      try { step.kill(); } catch { /* keep going */ }
    }
  });
}

/**
 * Postern in a child process for the benchmarks: `node dist/cli/main.js start` when dist/ is
 * built and fresh, else src/ through tsx; its config and queue in a new temp directory; stopped
 * with SIGTERM (SIGKILL after 10 s) and the directory removed, also on errors and Ctrl-C
 * (bench/lib/cleanup.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onCleanup } from './cleanup.js';

export const REPO = new URL('../..', import.meta.url).pathname;

function newestMtime(dir: string, suffix: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) newest = Math.max(newest, newestMtime(p, suffix));
    else if (name.endsWith(suffix)) newest = Math.max(newest, st.mtimeMs);
  }
  return newest;
}

/** dist/cli/main.js when dist/ is at least as new as every source file, else src through tsx. */
export function posternCommand(): { args: string[]; what: string } {
  const distMain = join(REPO, 'dist/cli/main.js');
  if (existsSync(distMain) && newestMtime(join(REPO, 'dist'), '.js') >= newestMtime(join(REPO, 'src'), '.ts')) {
    return { args: [distMain], what: 'node dist/cli/main.js' };
  }
  return { args: ['--import', 'tsx', join(REPO, 'src/cli/main.ts')], what: 'node --import tsx src/cli/main.ts (dist/ missing or older than src/)' };
}

/** Waits for a process to exit; SIGTERM first, SIGKILL after `graceMs`. */
export async function terminate(child: ChildProcess, exited: Promise<void>, graceMs: number, what: string): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timedOut = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref()),
  ]);
  if (timedOut) {
    process.stderr.write(`bench: ${what} did not stop within ${graceMs / 1000} s after SIGTERM; SIGKILL\n`);
    child.kill('SIGKILL');
    await exited;
  }
}

export interface PosternChild {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly dir: string;
  readonly what: string;
  stderrTail(): string;
  logLines(): { count: number; last: string[] };
  /** SIGTERM, SIGKILL after 10 s; then the temp directory is removed. Safe to call more than once. */
  stop(): Promise<void>;
}

export interface PosternOptions {
  /** Where the temp directory goes. */
  readonly parentDir: string;
  /**
   * The config, one YAML line each, relative paths from the temp directory. It must have a
   * listener named `inbound` on 127.0.0.1:0 (the port is read from the `inbound on` line).
   */
  readonly config: readonly string[];
  /** Node options before the script (e.g. --cpu-prof). */
  readonly nodeArgs?: readonly string[];
  /** A command that runs node (e.g. prlimit --nofile=N:N --), or none. */
  readonly prefix?: readonly string[];
}

export async function startPostern(o: PosternOptions): Promise<PosternChild> {
  const dir = mkdtempSync(join(o.parentDir, 'postern-bench-'));
  const configFile = join(dir, 'postern.yaml');
  writeFileSync(configFile, [...o.config, ''].join('\n'));
  const { args, what } = posternCommand();
  const argv = [process.execPath, ...(o.nodeArgs ?? []), ...args, 'start', '--config', configFile];
  const command = [...(o.prefix ?? []), ...argv];
  const child = spawn(command[0], command.slice(1), {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group: Ctrl-C reaches the benchmark, which stops the server itself
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const stop = onCleanup(
    `Postern (pid ${child.pid})`,
    async () => {
      await terminate(child, exited, 10_000, 'Postern');
      rmSync(dir, { recursive: true, force: true });
    },
    () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  );
  let stderr = '';
  let logCount = 0;
  let logTail: string[] = [];
  let partial = '';
  child.stderr!.setEncoding('utf8');
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    const lines = (partial + d).split('\n');
    partial = lines.pop()!;
    logCount += lines.length;
    logTail = [...logTail, ...lines].slice(-5);
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Postern did not start within 30 s:\n${stderr}`)), 30_000);
      child.stderr!.on('data', (d: string) => {
        stderr = (stderr + d).slice(-16_384);
        const m = /inbound on 127\.0\.0\.1:(\d+)/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`Postern exited (${child.exitCode ?? child.signalCode}) before listening:\n${stderr}`));
      });
    });
    return {
      child, pid: child.pid!, port, dir, what, stop,
      stderrTail: () => stderr,
      logLines: () => ({ count: logCount, last: logTail }),
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

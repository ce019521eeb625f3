/**
 * `postern start` in a child process, for tests that signal or kill the server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

export interface ChildGateway {
  readonly child: ChildProcess;
  readonly port: number;
  /** Everything the child wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (or signal name) when the child exits. */
  readonly exited: Promise<number | string>;
}

/** Writes a config for `dir` and starts the gateway with it. */
export function writeTestConfig(dir: string, extra = ''): string {
  const file = join(dir, 'postern.yaml');
  writeFileSync(file, [
    'hostname: mx.test',
    'store: { path: ./queue, min_free_space: 0 }',
    'listeners: [ { name: inbound, listen: "127.0.0.1:0" } ]',
    'logging: { level: warn }',
    /^dns:/m.test(extra) ? '' : 'dns: { servers: ["127.0.0.1:9"] }', // never the machine's resolver
    // Receiving tests keep what they queue; delivery tests say `delivery:` themselves.
    extra.includes('delivery:') ? '' : 'delivery: { enabled: false }',
    extra,
  ].join('\n'));
  return file;
}

export async function startChildGateway(configFile: string, timeoutMs = 20_000): Promise<ChildGateway> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'start', '--config', configFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8');
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal ?? -1));
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gateway did not start in time: ${err}`));
    }, timeoutMs);
    child.stderr!.on('data', (d: string) => {
      err += d;
      const m = /inbound on [^:]+:(\d+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited (${code}) before listening: ${err}`));
    });
  });
  return { child, port, stderr: () => err, exited };
}

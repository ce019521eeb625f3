/**
 * Durable acceptance benchmark: how many messages per second an SMTP server takes and answers
 * with `250` (for Postern: only after the queue's fsync), and how long the client waits from the
 * end of DATA to that `250`.
 *
 *   npm run bench -- [--concurrency 1,20,100] [--count 5000] [--size 5120] [--rounds 3]
 *                    [--messages-per-connection 1] [--target 127.0.0.1:25] [--no-pipelining]
 *
 * Without --target it starts Postern itself in a child process (`postern start`, dist/ when it is
 * built and fresh, else src/ through tsx), with its queue in a new temp directory, and stops it
 * at the end (SIGTERM, SIGKILL after 10 s), also on errors and Ctrl-C. See bench/README.md.
 *
 * The load client, the Postern child and the /proc readers live in bench/lib/ (shared with
 * bench/compare).
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { cleanupAll, installSignalHandlers } from './lib/cleanup.js';
import { startPostern, type PosternChild } from './lib/postern-child.js';
import { cpuSeconds, procStatus } from './lib/proc.js';
import {
  buildBodyTail, HOST, isAborted, markdownTable, median, mib, ms, runLoad, type RunResult,
} from './lib/smtp-load.js';

// ── options ──────────────────────────────────────────────────────────────────────────────────

const HELP = `usage: npm run bench -- [options]

  --concurrency N[,N…]          concurrent client connections; a list runs each in turn (default 20)
  --count N                     messages per run (default 5000)
  --size BYTES                  message size, headers included (default 5120)
  --messages-per-connection M   messages per connection, back to back (default 1)
  --rounds R                    runs per concurrency; with R > 1 the median is printed too (default 1)
  --pipelining / --no-pipelining  MAIL, RCPT and DATA in one write when PIPELINING is advertised (default on)
  --warmup N                    messages sent before the first run, not measured (default 200; 0: none)
  --target HOST:PORT            drive a running server on loopback instead of starting Postern
  --server-pid PID              with --target: read this process's RSS and CPU time
  --dir DIR                     where the started Postern keeps its temp queue (default: ${os.tmpdir()})
  --server-cpu-prof DIR         run the started Postern with node --cpu-prof, profile written to DIR
  --help                        this text
`;

const { values: opt } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '20' },
    count: { type: 'string', default: '5000' },
    size: { type: 'string', default: '5120' },
    'messages-per-connection': { type: 'string', default: '1' },
    rounds: { type: 'string', default: '1' },
    pipelining: { type: 'boolean', default: true },
    'no-pipelining': { type: 'boolean', default: false },
    warmup: { type: 'string', default: '200' },
    target: { type: 'string' },
    'server-pid': { type: 'string' },
    dir: { type: 'string', default: os.tmpdir() },
    'server-cpu-prof': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

if (opt.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function usageError(message: string): never {
  process.stderr.write(`bench: ${message}\n\n${HELP}`);
  process.exit(2);
}

function intOption(name: string, text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text.trim())) usageError(`--${name}: expected a whole number, got ${JSON.stringify(text)}`);
  const n = Number(text);
  if (n < min || n > max) usageError(`--${name}: must be between ${min} and ${max}, got ${n}`);
  return n;
}

const concurrencies = opt.concurrency.split(',').map((c) => intOption('concurrency', c, 1, 2000));
const count = intOption('count', opt.count, 1, 10_000_000);
const size = intOption('size', opt.size, 1, 64 * 1024 * 1024);
const perConnection = intOption('messages-per-connection', opt['messages-per-connection'], 1, 1000);
const rounds = intOption('rounds', opt.rounds, 1, 100);
const warmup = intOption('warmup', opt.warmup, 0, 1_000_000);
const usePipelining = opt.pipelining && !opt['no-pipelining'];

function parseTarget(text: string): number {
  const i = text.lastIndexOf(':');
  const host = i < 0 ? '' : text.slice(0, i);
  if (host !== '127.0.0.1' && host !== 'localhost') {
    usageError(`--target: only 127.0.0.1:PORT (loopback) is allowed, got ${JSON.stringify(text)}`);
  }
  return intOption('target', text.slice(i + 1), 1, 65535);
}

const targetPort = opt.target === undefined ? null : parseTarget(opt.target);
const serverPidOption = opt['server-pid'] === undefined ? null : intOption('server-pid', opt['server-pid'], 1, 2 ** 31);

let BODY_TAIL: Buffer;
try {
  BODY_TAIL = buildBodyTail(size);
} catch (err) {
  usageError(`--size: ${err instanceof Error ? err.message : String(err)}`);
}

function formatRun(r: Pick<RunResult, 'concurrency' | 'count' | 'accepted' | 'failed' | 'elapsedS' | 'rate' | 'p50' | 'p99'>): string {
  return `concurrency=${r.concurrency} size=${size} count=${r.count} accepted=${r.accepted} failed=${r.failed}`
    + ` elapsed=${r.elapsedS.toFixed(2)}s rate=${Math.round(r.rate)} msgs/s p50=${ms(r.p50)}ms p99=${ms(r.p99)}ms`;
}

// ── the server: a Postern child, or a running target ─────────────────────────────────────────

let serverPid: number | null = serverPidOption;
let childServer: PosternChild | null = null;

function serverCpuSeconds(): number | null {
  return serverPid === null ? null : cpuSeconds(serverPid);
}

function runOnce(port: number, concurrency: number, total: number): Promise<RunResult> {
  return runLoad({
    port, concurrency, total, tail: BODY_TAIL, perConnection, pipelining: usePipelining, serverCpu: serverCpuSeconds,
  });
}

async function startChildServer(): Promise<PosternChild> {
  const maxConnections = Math.max(1000, Math.max(...concurrencies) + 50);
  const server = await startPostern({
    parentDir: opt.dir,
    config: [
      'hostname: bench.test',
      'store: { path: ./queue, min_free_space: 0 }',
      `listeners: [ { name: inbound, listen: "127.0.0.1:0", max_connections: ${maxConnections} } ]`,
      `limits: { max_messages_per_connection: ${Math.max(1000, perConnection)} }`,
      'logging: { level: warn }',
      // Acceptance only: what is queued stays queued (delivery has its own benchmark, bench/deliver.ts),
      // and no lookup ever leaves the machine.
      'delivery: { enabled: false }',
      'dns: { servers: ["127.0.0.1:9"] }',
    ],
    nodeArgs: opt['server-cpu-prof'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', opt['server-cpu-prof']],
  });
  serverPid = server.pid;
  return server;
}

installSignalHandlers('bench', 'closing client connections, stopping the server');

// ── main ─────────────────────────────────────────────────────────────────────────────────────

/** Exit code: 0 when every message was accepted, 1 when any failed. */
async function main(): Promise<number> {
  let port: number;
  let targetWhat: string;
  if (targetPort === null) {
    childServer = await startChildServer();
    port = childServer.port;
    targetWhat = `Postern child pid ${childServer.pid} (${childServer.what}), queue in ${childServer.dir}`;
  } else {
    port = targetPort;
    targetWhat = `running server at ${HOST}:${port}${serverPid === null ? '' : ` (pid ${serverPid})`}`;
  }
  process.stdout.write(
    `target: ${targetWhat}\n`
    + `client: node ${process.version}, ${os.cpus().length} CPUs, ${perConnection} message(s) per connection,`
    + ` pipelining ${usePipelining ? 'on' : 'off'}, message ${size} bytes\n`,
  );

  if (warmup > 0) {
    const w = await runOnce(port, Math.min(10, Math.max(...concurrencies)), warmup);
    process.stdout.write(`warm-up: ${w.accepted}/${warmup} accepted (not measured)${w.pipelined ? '' : usePipelining ? ', server does not advertise PIPELINING' : ''}\n`);
  }

  const table: { concurrency: number; r: RunResult[] }[] = [];
  for (const c of concurrencies) {
    const results: RunResult[] = [];
    for (let round = 1; round <= rounds && !isAborted(); round++) {
      const r = await runOnce(port, c, count);
      results.push(r);
      const cpu = r.serverCpuS === null ? '' : `  cpu: server ${r.serverCpuS.toFixed(2)}s (${Math.round((100 * r.serverCpuS) / r.elapsedS)}%)`
        + ` client ${r.clientCpuS.toFixed(2)}s (${Math.round((100 * r.clientCpuS) / r.elapsedS)}%)`;
      const rss = serverPid === null ? null : procStatus(serverPid);
      process.stdout.write(`${rounds > 1 ? `[round ${round}/${rounds}] ` : ''}${formatRun(r)}\n`);
      process.stdout.write(`  p90=${ms(r.p90)}ms max=${ms(r.max)}ms${cpu}${rss ? `  server rss=${mib(rss.rssKiB)}` : ''}\n`);
      for (const [why, n] of r.failures) process.stdout.write(`  failed ${n}×: ${why}\n`);
    }
    if (results.length === 0) break;
    if (results.length > 1) {
      process.stdout.write(`median of ${results.length}: ${formatRun({
        concurrency: c,
        count,
        accepted: median(results.map((r) => r.accepted)),
        failed: median(results.map((r) => r.failed)),
        elapsedS: median(results.map((r) => r.elapsedS)),
        rate: median(results.map((r) => r.rate)),
        p50: median(results.map((r) => r.p50)),
        p99: median(results.map((r) => r.p99)),
      })}\n`);
    }
    table.push({ concurrency: c, r: results });
  }

  // Summary (medians when rounds > 1).
  const rows = table.map(({ concurrency, r }) => [
    String(concurrency),
    String(perConnection),
    String(size),
    String(count),
    String(r.reduce((s, x) => s + x.accepted, 0)),
    String(r.reduce((s, x) => s + x.failed, 0)),
    String(Math.round(median(r.map((x) => x.rate)))),
    ms(median(r.map((x) => x.p50))),
    ms(median(r.map((x) => x.p90))),
    ms(median(r.map((x) => x.p99))),
    r[0].serverCpuS === null ? '-' : `${Math.round(median(r.map((x) => (100 * x.serverCpuS!) / x.elapsedS)))}%`,
    `${Math.round(median(r.map((x) => (100 * x.clientCpuS) / x.elapsedS)))}%`,
  ]);
  const head = ['concurrency', 'msgs/conn', 'size', 'count', 'accepted', 'failed',
    rounds > 1 ? 'median msgs/s' : 'msgs/s', 'p50 ms', 'p90 ms', 'p99 ms', 'server cpu', 'client cpu'];
  if (isAborted()) process.stdout.write('\n(interrupted: the last run is incomplete)\n');
  process.stdout.write(`\nsummary${rounds > 1 ? ` (accepted/failed summed over ${rounds} rounds; rates and latencies are medians)` : ''}:\n`);
  process.stdout.write(markdownTable(head, rows));

  if (serverPid !== null) {
    const st = procStatus(serverPid);
    if (st) process.stdout.write(`server rss at end: ${mib(st.rssKiB)} (peak ${mib(st.hwmKiB)})\n`);
  }
  if (childServer) {
    const logs = childServer.logLines();
    if (logs.count > 0) {
      process.stdout.write(`server logged ${logs.count} line(s) at warn or above; last:\n${logs.last.map((l) => `  ${l}`).join('\n')}\n`);
    }
  }
  return table.some(({ r }) => r.some((x) => x.failed > 0)) ? 1 : 0;
}

let exitCode = 0;
try {
  exitCode = await main();
} catch (err) {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  exitCode = 1;
} finally {
  await cleanupAll();
}
process.exit(exitCode);

/**
 * Delivery benchmark: how many queued messages per second Postern delivers to a local SMTP sink.
 *
 *   npx tsx bench/deliver.ts [--concurrency 1,5,20,50] [--count 5000] [--size 5120]
 *                            [--messages-per-connection 100] [--sink auto|smtp-sink|node] [--rounds 1]
 *
 * Per run: a fresh queue (SQLite, in a new temp directory) is filled with `--count` messages of
 * `--size` bytes to one recipient each, straight through the store (no SMTP on the way in); then
 * the delivery service starts (scheduler, connection pool, SMTP client — what `postern start`
 * runs) with `--concurrency` messages in flight and as many connections to the sink, and the
 * clock runs until the last message is recorded as delivered. The sink is Postfix's smtp-sink
 * when it is installed (Debian's postfix package), else a small Node sink in this process.
 * Loopback only: the sink listens on 127.0.0.2. See bench/README.md.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { freePort, waitForPort, wholeNumberOption } from './lib/ports.js';
import { parseConfigText } from '../src/config/load-config.js';
import { DeliveryService } from '../src/delivery/delivery-service.js';
import { silentLogger } from '../src/observability/logger.js';
import { openSqliteQueueStore, type SqliteQueueStore } from '../src/store/sqlite/sqlite-queue-store.js';
import type { Envelope } from '../src/store/queue-types.js';

const HELP = `usage: npx tsx bench/deliver.ts [options]

  --concurrency N[,N…]          messages in flight (and connections to the sink); a list runs each (default 1,5,20,50)
  --count N                     messages per run (default 5000)
  --size BYTES                  message size (default 5120)
  --messages-per-connection M   delivery.max_messages_per_connection (default 100)
  --sink auto|smtp-sink|node    the peer (default auto: smtp-sink when installed)
  --rounds R                    runs per concurrency; R > 1 also prints the median (default 1)
  --dir DIR                     where the temp queues go (default ${os.tmpdir()})
  --help
`;

const { values: opt } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '1,5,20,50' },
    count: { type: 'string', default: '5000' },
    size: { type: 'string', default: '5120' },
    'messages-per-connection': { type: 'string', default: '100' },
    sink: { type: 'string', default: 'auto' },
    rounds: { type: 'string', default: '1' },
    dir: { type: 'string', default: os.tmpdir() },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (opt.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const int = (name: string, text: string, min: number, max: number): number => wholeNumberOption('deliver', HELP, name, text, min, max);

const concurrencies = opt.concurrency.split(',').map((c) => int('concurrency', c, 1, 1000));
const count = int('count', opt.count, 1, 10_000_000);
const size = int('size', opt.size, 200, 64 * 1024 * 1024);
const perConnection = int('messages-per-connection', opt['messages-per-connection'], 1, 100_000);
const rounds = int('rounds', opt.rounds, 1, 100);
const SINK_HOST = '127.0.0.2';

const SMTP_SINK = spawnSync('sh', ['-c', 'command -v smtp-sink'], { encoding: 'utf8' }).stdout.trim();
const sinkKind = opt.sink === 'auto' ? (SMTP_SINK ? 'smtp-sink' : 'node') : opt.sink;
if (sinkKind !== 'smtp-sink' && sinkKind !== 'node') {
  process.stderr.write(`deliver: --sink: expected auto, smtp-sink or node\n`);
  process.exit(2);
}
if (sinkKind === 'smtp-sink' && !SMTP_SINK) {
  process.stderr.write('deliver: smtp-sink is not installed (Debian: apt-get install postfix)\n');
  process.exit(2);
}

// ── the sink ─────────────────────────────────────────────────────────────────────────────────

interface Sink {
  readonly port: number;
  /** Messages the sink acknowledged (node sink only; smtp-sink is not asked). */
  received(): number | null;
  stop(): Promise<void>;
}

async function startSmtpSink(): Promise<Sink> {
  const port = await freePort(SINK_HOST);
  const root = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
  const child: ChildProcess = spawn(SMTP_SINK, [...root, '-m', '1000', '-h', 'sink.bench.test', `${SINK_HOST}:${port}`, '1000'], { stdio: 'ignore' });
  await waitForPort(SINK_HOST, port, 'the sink', 5000);
  return {
    port,
    received: () => null,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/** A minimal pipelining sink: 250 to everything, the data read until CRLF.CRLF and dropped. */
async function startNodeSink(): Promise<Sink> {
  let received = 0;
  const EHLO = '250-sink.bench.test\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 DSN\r\n';
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    let inData = false;
    let tail = '';
    let pending = '';
    socket.on('data', (d: Buffer) => {
      let text = tail + d.toString('latin1');
      tail = '';
      let out = '';
      while (text.length > 0) {
        if (inData) {
          const end = text.indexOf('\r\n.\r\n');
          const startEnd = pending === '' && text.startsWith('.\r\n') ? 0 : -1;
          if (end < 0 && startEnd < 0) {
            tail = text.slice(-4);
            pending = 'x';
            break;
          }
          const cut = startEnd === 0 ? 3 : end + 5;
          text = text.slice(cut);
          inData = false;
          pending = '';
          received++;
          out += '250 2.0.0 Ok: queued\r\n';
          continue;
        }
        const eol = text.indexOf('\r\n');
        if (eol < 0) {
          tail = text;
          break;
        }
        const line = text.slice(0, eol).toUpperCase();
        text = text.slice(eol + 2);
        if (line.startsWith('EHLO')) out += EHLO;
        else if (line.startsWith('DATA')) {
          inData = true;
          pending = '';
          out += '354 go ahead\r\n';
        } else if (line.startsWith('QUIT')) {
          socket.end('221 2.0.0 Bye\r\n');
          return;
        } else out += '250 2.0.0 Ok\r\n';
      }
      if (out) socket.write(out);
    });
    socket.on('error', () => undefined);
    socket.write('220 sink.bench.test ESMTP\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, SINK_HOST, resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    received: () => received,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

// ── the queue ────────────────────────────────────────────────────────────────────────────────

function messageBody(seq: number): Buffer {
  const head = `From: Postern Bench <bench@src.test>\r\nTo: <rcpt@bench.test>\r\nSubject: delivery benchmark\r\n`
    + `Message-ID: <${seq}.deliver@src.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n`;
  const filler = 'The quick brown fox jumps over the lazy dog while the queue keeps every message.\r\n';
  let body = head;
  while (body.length + filler.length <= size) body += filler;
  body += 'x'.repeat(Math.max(0, size - body.length - 2)) + '\r\n';
  return Buffer.from(body.slice(0, size), 'latin1');
}

async function fillQueue(store: SqliteQueueStore, now: number): Promise<void> {
  const envelope = (i: number): Envelope => ({
    sender: 'bench@src.test',
    recipients: [{ address: `rcpt${i % 100}@bench.test`, notify: null, orcpt: null }],
    ret: null, envid: null, body: null, smtputf8: false,
    client: { ip: '127.0.0.1', port: 0, helo: 'bench', listener: 'bench', senderGroup: null, policy: null, rdns: null },
    sessionId: `bench-${i}`,
    receivedAt: now,
  });
  const batch = 500;
  for (let i = 0; i < count; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, count - i) }, async (_, k) => {
      const m = store.beginMessage();
      m.write(messageBody(i + k));
      await m.commit(envelope(i + k));
    }));
  }
}

// ── a run ────────────────────────────────────────────────────────────────────────────────────

interface RunResult {
  readonly concurrency: number;
  readonly delivered: number;
  readonly failed: number;
  readonly seconds: number;
  readonly rate: number;
  readonly connections: number;
  readonly cpu: number;
}

async function run(concurrency: number, sink: Sink): Promise<RunResult> {
  const dir = mkdtempSync(join(opt.dir, 'postern-deliver-'));
  const now = Date.now();
  try {
    const config = parseConfigText([
      'hostname: mx.bench.test',
      `store: { path: ${JSON.stringify(join(dir, 'queue'))}, min_free_space: 0 }`,
      `domains: { local: [src.test], relay: { bench.test: { next_hop: "smtp://${SINK_HOST}:${sink.port}", tls: none } } }`,
      `delivery: { concurrency: ${concurrency}, max_connections_per_destination: ${concurrency}, max_messages_per_connection: ${perConnection}, connection_idle_time: 5s }`,
      'logging: { level: silent }',
    ].join('\n'), 'bench.yaml', { baseDir: dir });
    const store = openSqliteQueueStore({ directory: config.store.path, minFreeBytes: 0 });
    await fillQueue(store, now);
    const noDns = { mx: async () => ({ ok: false as const, kind: 'temporary' as const, error: 'no DNS in the benchmark' }), a: async () => ({ ok: false as const, kind: 'temporary' as const, error: 'x' }), aaaa: async () => ({ ok: false as const, kind: 'temporary' as const, error: 'x' }) };
    const service = new DeliveryService({ config, store, dns: noDns, log: silentLogger(), mailboxPath: join(dir, 'mail') });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    service.start();
    for (;;) {
      await new Promise((r) => setTimeout(r, 5));
      await service.scheduler.idle();
      if (store.counts().queued === 0) break;
      if (store.nextWakeAt() !== null && store.nextWakeAt()! > Date.now()) break; // deferred: failures
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const done = store.listMessages({ state: 'done' });
    const delivered = done.filter((m) => m.recipients.every((r) => r.state === 'delivered')).length;
    const connections = service.pool.opened;
    await service.stop(1000);
    await store.close();
    return {
      concurrency, delivered, failed: count - delivered, seconds, rate: delivered / seconds, connections,
      cpu: (cpu.user + cpu.system) / 1e6 / seconds,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function line(r: RunResult): string {
  return `concurrency=${r.concurrency} size=${size} count=${count} delivered=${r.delivered} failed=${r.failed} `
    + `elapsed=${r.seconds.toFixed(2)}s rate=${Math.round(r.rate)} msgs/s connections=${r.connections} cpu=${Math.round(r.cpu * 100)}%`;
}

const sink = sinkKind === 'smtp-sink' ? await startSmtpSink() : await startNodeSink();
process.stdout.write(`sink: ${sinkKind} on ${SINK_HOST}:${sink.port}; node ${process.version}; ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'})\n`);
let exitCode = 0;
try {
  const summary: string[] = [];
  for (const c of concurrencies) {
    const results: RunResult[] = [];
    for (let i = 0; i < rounds; i++) {
      const r = await run(c, sink);
      results.push(r);
      process.stdout.write(`${line(r)}\n`);
      if (r.failed > 0) exitCode = 1;
    }
    const sorted = [...results].sort((a, b) => a.rate - b.rate);
    const median = sorted[Math.floor(sorted.length / 2)];
    if (rounds > 1) process.stdout.write(`median: ${line(median)}\n`);
    summary.push(`| ${c} | ${Math.round(median.rate)} |`);
  }
  process.stdout.write(`\n| concurrency | delivered msgs/s |\n|---|---|\n${summary.join('\n')}\n`);
} finally {
  await sink.stop();
}
process.exit(exitCode);

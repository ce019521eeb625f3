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
 * The client is meant to be cheap (it shares the machine with the server): replies are parsed
 * only as far as needed (a reply ends at a line whose 4th character is a space), and each
 * message goes out as one corked write of a small per-message header and a shared body buffer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

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

/** Loopback only: the benchmark never connects anywhere else. */
const HOST = '127.0.0.1';

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

// ── the message ──────────────────────────────────────────────────────────────────────────────

const SENDER = 'bench@client.test';
const RECIPIENT = 'rcpt@example.test';
const EHLO = 'EHLO client.test\r\n';
const MAIL = `MAIL FROM:<${SENDER}>\r\n`;
const RCPT = `RCPT TO:<${RECIPIENT}>\r\n`;
const PIPELINED = `${MAIL}${RCPT}DATA\r\n`;
const RUN_TAG = `${process.pid.toString(36)}${Date.now().toString(36)}`;
const DATE = new Date().toUTCString().replace('GMT', '+0000');
const SEQ_WIDTH = 8;

/** The per-message part: headers with a unique Message-ID, always the same length. */
function messageHeader(seq: number): string {
  return `From: Postern Bench <${SENDER}>\r\n`
    + `To: <${RECIPIENT}>\r\n`
    + `Subject: Postern acceptance benchmark\r\n`
    + `Date: ${DATE}\r\n`
    + `Message-ID: <${String(seq).padStart(SEQ_WIDTH, '0')}.${RUN_TAG}@client.test>\r\n`
    + `MIME-Version: 1.0\r\n`
    + `Content-Type: text/plain; charset=us-ascii\r\n`
    + `Content-Transfer-Encoding: 7bit\r\n`
    + `\r\n`;
}

const HEADER_BYTES = Buffer.byteLength(messageHeader(0), 'latin1');

/**
 * The shared rest of every message: filler lines of 76 characters + CRLF up to exactly `size`
 * bytes in all, then the end-of-data `.` line. Every line starts with a letter or digit, so
 * nothing needs dot-stuffing.
 */
function buildBodyTail(totalSize: number): Buffer {
  let remaining = totalSize - HEADER_BYTES;
  if (remaining < 0 || remaining === 1) {
    usageError(`--size: must be at least ${HEADER_BYTES + 2} bytes (the headers alone take ${HEADER_BYTES})`);
  }
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const text = 'The quick brown fox jumps over the lazy dog while the queue keeps every message safe. ';
  const lines: string[] = [];
  let n = 0;
  while (remaining >= 78) {
    const start = (n * 7) % text.length;
    const line = (alphabet[n % alphabet.length] + (text + text).slice(start, start + 75));
    lines.push(line);
    remaining -= 78;
    n++;
  }
  if (remaining === 1) lines[lines.length - 1] += 'x'; // one line of 77 characters
  else if (remaining >= 2) lines.push('z'.repeat(remaining - 2));
  let out = lines.map((l) => `${l}\r\n`).join('');
  out += '.\r\n';
  const buf = Buffer.from(out, 'latin1');
  if (HEADER_BYTES + buf.length - 3 !== totalSize) throw new Error(`message size mismatch: ${HEADER_BYTES + buf.length - 3} != ${totalSize}`);
  return buf;
}

const BODY_TAIL = buildBodyTail(size);

// ── a minimal SMTP client connection ─────────────────────────────────────────────────────────

interface Reply {
  readonly code: number;
  /** The whole reply, lines joined with CRLF (no final CRLF). */
  readonly text: string;
}

const REPLY_TIMEOUT_MS = 120_000;

class Conn {
  private buf = '';
  private readonly ready: Reply[] = [];
  private waiter: ((r: Reply) => void) | null = null;
  private rejecter: ((e: Error) => void) | null = null;
  private error: Error | null = null;
  readonly socket: net.Socket;

  constructor(port: number) {
    this.socket = net.connect({ host: HOST, port, noDelay: true });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('close', () => this.fail(new Error('connection closed by server')));
    this.socket.setTimeout(REPLY_TIMEOUT_MS, () => this.socket.destroy(new Error('reply timeout')));
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk.toString('latin1') : this.buf + chunk.toString('latin1');
    const buf = this.buf;
    let replyStart = 0;
    let lineStart = 0;
    for (;;) {
      const eol = buf.indexOf('\r\n', lineStart);
      if (eol < 0) break;
      // Last line of a reply: "250 …" (or a bare "250"); "250-…" continues.
      if (eol - lineStart < 4 || buf.charCodeAt(lineStart + 3) === 32) {
        const code = (buf.charCodeAt(replyStart) - 48) * 100 + (buf.charCodeAt(replyStart + 1) - 48) * 10
          + (buf.charCodeAt(replyStart + 2) - 48);
        this.deliver({ code, text: buf.slice(replyStart, eol) });
        replyStart = eol + 2;
      }
      lineStart = eol + 2;
    }
    this.buf = replyStart === 0 ? buf : buf.slice(replyStart);
  }

  private deliver(r: Reply): void {
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      this.rejecter = null;
      w(r);
    } else {
      this.ready.push(r);
    }
  }

  private fail(err: Error): void {
    if (this.error) return;
    this.error = err;
    const r = this.rejecter;
    if (r) {
      this.waiter = null;
      this.rejecter = null;
      r(err);
    }
  }

  read(): Promise<Reply> {
    if (this.ready.length > 0) return Promise.resolve(this.ready.shift()!);
    if (this.error) return Promise.reject(this.error);
    return new Promise<Reply>((resolve, reject) => {
      this.waiter = resolve;
      this.rejecter = reject;
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The message in one write: its own header, then the shared filler and the `.` line. */
  writeMessage(header: string): void {
    this.socket.cork();
    this.socket.write(header, 'latin1');
    this.socket.write(BODY_TAIL);
    this.socket.uncork();
  }

  close(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

// ── one run ──────────────────────────────────────────────────────────────────────────────────

interface RunResult {
  readonly concurrency: number;
  readonly count: number;
  readonly accepted: number;
  readonly failed: number;
  readonly elapsedS: number;
  readonly rate: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  /** Failure reasons (first reply line or error) and how often. */
  readonly failures: Map<string, number>;
  readonly pipelined: boolean;
  readonly serverCpuS: number | null;
  readonly clientCpuS: number;
}

let globalSeq = 0;
/** Set on Ctrl-C / SIGTERM: workers stop and every open client connection is closed at once. */
let aborted = false;
const liveConns = new Set<Conn>();

function abortClients(): void {
  aborted = true;
  for (const c of liveConns) c.destroy();
}

async function runOnce(port: number, concurrency: number, total: number): Promise<RunResult> {
  const latencies = new Float64Array(total);
  let accepted = 0;
  let failed = 0;
  let claimed = 0;
  let pipelinedSeen = false;
  const failures = new Map<string, number>();

  const fail = (why: string): void => {
    failed++;
    const key = why.split('\r\n')[0].slice(0, 200);
    failures.set(key, (failures.get(key) ?? 0) + 1);
  };
  const ok2or3 = (r: Reply): boolean => r.code >= 200 && r.code < 400;

  /** One transaction on an open connection; false when the connection should not be reused. */
  async function transaction(conn: Conn, pipelining: boolean): Promise<boolean> {
    let failure: Reply | null = null;
    if (pipelining) {
      conn.write(PIPELINED);
      const m = await conn.read();
      const r = await conn.read();
      const d = await conn.read();
      if (!ok2or3(m)) failure = m;
      else if (!ok2or3(r)) failure = r;
      else if (d.code !== 354) failure = d;
      if (d.code === 354 && failure) {
        // DATA went through although MAIL or RCPT failed: end the (empty) message politely.
        conn.write('.\r\n');
        await conn.read();
      }
    } else {
      conn.write(MAIL);
      const m = await conn.read();
      if (!ok2or3(m)) failure = m;
      else {
        conn.write(RCPT);
        const r = await conn.read();
        if (!ok2or3(r)) failure = r;
        else {
          conn.write('DATA\r\n');
          const d = await conn.read();
          if (d.code !== 354) failure = d;
        }
      }
    }
    if (failure) {
      fail(failure.text);
      conn.write('RSET\r\n');
      const rs = await conn.read();
      return rs.code === 250;
    }
    const header = messageHeader(globalSeq++);
    const t0 = performance.now();
    conn.writeMessage(header);
    const end = await conn.read();
    const dt = performance.now() - t0;
    if (end.code === 250) latencies[accepted++] = dt;
    else fail(end.text);
    return ok2or3(end);
  }

  async function worker(): Promise<void> {
    while (claimed < total && !aborted) {
      claimed++; // the first message of this connection: counted as failed if the connection fails
      let pending = true;
      const conn = new Conn(port);
      liveConns.add(conn);
      try {
        const greeting = await conn.read();
        if (greeting.code !== 220) {
          fail(greeting.text);
          pending = false;
          continue;
        }
        conn.write(EHLO);
        const ehlo = await conn.read();
        if (ehlo.code !== 250) {
          fail(ehlo.text);
          pending = false;
          continue;
        }
        const pipelining = usePipelining && ehlo.text.includes('PIPELINING');
        if (pipelining) pipelinedSeen = true;
        let sent = 0;
        for (;;) {
          pending = true;
          const reusable = await transaction(conn, pipelining);
          pending = false;
          sent++;
          if (!reusable || sent >= perConnection || claimed >= total || aborted) break;
          claimed++;
        }
        try {
          conn.write('QUIT\r\n');
          await conn.read();
        } catch {
          // the messages are in; a lost QUIT reply is not a failure
        }
      } catch (err) {
        if (pending) fail(err instanceof Error ? err.message : String(err));
      } finally {
        conn.close();
        liveConns.delete(conn);
      }
    }
  }

  const cpu0 = process.cpuUsage();
  const srv0 = serverCpuSeconds();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  const elapsedS = (performance.now() - t0) / 1000;
  const srv1 = serverCpuSeconds();
  const cpu = process.cpuUsage(cpu0);

  const sorted = latencies.subarray(0, accepted).sort();
  const pct = (p: number): number => (accepted === 0 ? NaN : sorted[Math.min(accepted - 1, Math.floor(p * accepted))]);
  return {
    concurrency,
    count: total,
    accepted,
    failed,
    elapsedS,
    rate: accepted / elapsedS,
    p50: pct(0.5),
    p90: pct(0.9),
    p99: pct(0.99),
    max: accepted === 0 ? NaN : sorted[accepted - 1],
    failures,
    pipelined: pipelinedSeen,
    serverCpuS: srv0 === null || srv1 === null ? null : srv1 - srv0,
    clientCpuS: (cpu.user + cpu.system) / 1e6,
  };
}

function ms(x: number): string {
  return Number.isNaN(x) ? '-' : x < 10 ? x.toFixed(2) : x.toFixed(1);
}

function formatRun(r: Pick<RunResult, 'concurrency' | 'count' | 'accepted' | 'failed' | 'elapsedS' | 'rate' | 'p50' | 'p99'>): string {
  return `concurrency=${r.concurrency} size=${size} count=${r.count} accepted=${r.accepted} failed=${r.failed}`
    + ` elapsed=${r.elapsedS.toFixed(2)}s rate=${Math.round(r.rate)} msgs/s p50=${ms(r.p50)}ms p99=${ms(r.p99)}ms`;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

// ── the server: a Postern child, or a running target ─────────────────────────────────────────

const REPO = new URL('..', import.meta.url).pathname;
let serverPid: number | null = serverPidOption;

interface ProcStatus { rssKiB: number; hwmKiB: number }

function procStatus(pid: number): ProcStatus | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key: string): number => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
      return m ? Number(m[1]) : NaN;
    };
    return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
  } catch {
    return null;
  }
}

/** utime + stime of the server process, in seconds (Linux clock ticks are 1/100 s). */
function serverCpuSeconds(): number | null {
  if (serverPid === null) return null;
  try {
    const stat = readFileSync(`/proc/${serverPid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

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
function serverCommand(): { args: string[]; what: string } {
  const distMain = join(REPO, 'dist/cli/main.js');
  if (existsSync(distMain) && newestMtime(join(REPO, 'dist'), '.js') >= newestMtime(join(REPO, 'src'), '.ts')) {
    return { args: [distMain], what: 'node dist/cli/main.js' };
  }
  return { args: ['--import', 'tsx', join(REPO, 'src/cli/main.ts')], what: 'node --import tsx src/cli/main.ts (dist/ missing or older than src/)' };
}

interface ChildServer {
  readonly child: ChildProcess;
  readonly port: number;
  readonly dir: string;
  readonly what: string;
  readonly exited: Promise<void>;
  stderrTail(): string;
  logLines(): { count: number; last: string[] };
}

let childServer: ChildServer | null = null;
let childDir: string | null = null;

async function startChildServer(): Promise<ChildServer> {
  const dir = mkdtempSync(join(opt.dir, 'postern-bench-'));
  childDir = dir;
  const configFile = join(dir, 'postern.yaml');
  const maxConnections = Math.max(1000, Math.max(...concurrencies) + 50);
  writeFileSync(configFile, [
    'hostname: bench.test',
    'store: { path: ./queue, min_free_space: 0 }',
    `listeners: [ { name: inbound, listen: "127.0.0.1:0", max_connections: ${maxConnections} } ]`,
    `limits: { max_messages_per_connection: ${Math.max(1000, perConnection)} }`,
    'logging: { level: warn }',
    // Acceptance only: what is queued stays queued (delivery has its own benchmark, bench/deliver.ts),
    // and no lookup ever leaves the machine.
    'delivery: { enabled: false }',
    'dns: { servers: ["127.0.0.1:9"] }',
    '',
  ].join('\n'));
  const { args, what } = serverCommand();
  const nodeArgs: string[] = [];
  if (opt['server-cpu-prof'] !== undefined) nodeArgs.push('--cpu-prof', '--cpu-prof-dir', opt['server-cpu-prof']);
  const child = spawn(process.execPath, [...nodeArgs, ...args, 'start', '--config', configFile], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group: Ctrl-C reaches the benchmark, which stops the server itself
  });
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
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
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
  serverPid = child.pid ?? null;
  return {
    child, port, dir, what, exited,
    stderrTail: () => stderr,
    logLines: () => ({ count: logCount, last: logTail }),
  };
}

let stopping: Promise<void> | null = null;

/** SIGTERM, SIGKILL after 10 s; then remove the temp directory. Safe to call more than once. */
function stopChildServer(): Promise<void> {
  if (stopping) return stopping;
  stopping = (async () => {
    const s = childServer;
    if (s && s.child.exitCode === null && s.child.signalCode === null) {
      s.child.kill('SIGTERM');
      const timedOut = await Promise.race([
        s.exited.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), 10_000).unref()),
      ]);
      if (timedOut) {
        process.stderr.write('bench: server did not stop within 10 s after SIGTERM; SIGKILL\n');
        s.child.kill('SIGKILL');
        await s.exited;
      }
    }
    if (childDir) rmSync(childDir, { recursive: true, force: true });
    childDir = null;
  })();
  return stopping;
}

// Last resort if the process exits some other way: no orphaned server, no temp directory left.
process.on('exit', () => {
  const s = childServer;
  if (s && s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  if (childDir) rmSync(childDir, { recursive: true, force: true });
});

let interrupted = 0;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    interrupted++;
    if (interrupted > 1) process.exit(130);
    process.stderr.write(`\nbench: ${sig}: closing client connections, stopping the server…\n`);
    abortClients();
    void stopChildServer().finally(() => process.exit(130));
  });
}

// ── main ─────────────────────────────────────────────────────────────────────────────────────

function mib(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

/** Exit code: 0 when every message was accepted, 1 when any failed. */
async function main(): Promise<number> {
  let port: number;
  let targetWhat: string;
  if (targetPort === null) {
    childServer = await startChildServer();
    port = childServer.port;
    targetWhat = `Postern child pid ${childServer.child.pid} (${childServer.what}), queue in ${childServer.dir}`;
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
    for (let round = 1; round <= rounds && !aborted; round++) {
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
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padStart(widths[i])).join(' | ')} |\n`;
  if (aborted) process.stdout.write('\n(interrupted: the last run is incomplete)\n');
  process.stdout.write(`\nsummary${rounds > 1 ? ` (accepted/failed summed over ${rounds} rounds; rates and latencies are medians)` : ''}:\n`);
  process.stdout.write(line(head));
  process.stdout.write(`|${widths.map((w) => '-'.repeat(w + 1) + ':').join('|')}|\n`);
  for (const row of rows) process.stdout.write(line(row));

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
  await stopChildServer();
}
process.exit(exitCode);

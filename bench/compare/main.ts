/**
 * Postern side by side with Postfix and Haraka (issue 8): the same load against each, in turn
 * (A B A B …, several rounds), medians and ratios against Postfix, as a Markdown report.
 *
 *   npx tsx bench/compare/main.ts [--rounds 3] [--quick] [--peers postern,postfix,haraka,smtp-sink]
 *
 * Rows: durable acceptance (5 KB, concurrency 1, 20, 100; smtp-sink as the reference), relay end
 * to end (accept and deliver to smtp-sink: time until the sink has them all), memory (idle
 * connections after EHLO, and sessions in the middle of DATA). Loopback only (127.0.0.1 for the
 * servers, 127.0.0.2 for the sink). Everything started is stopped on exit, error and Ctrl-C.
 * See bench/README.md.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { cleanupAll, installSignalHandlers } from '../lib/cleanup.js';
import { REPO } from '../lib/postern-child.js';
import { wholeNumberOption } from '../lib/ports.js';
import { processTree, type TreeMemory } from '../lib/proc.js';
import {
  buildBodyTail, greetAndEhlo, isAborted, markdownTable, median, messageHeader, ms, PIPELINED, release, runLoad,
  trackedConn, type Conn, type RunResult,
} from '../lib/smtp-load.js';
import { ALL_PEERS, NOFILE, SINK_HOST, startSmtpSink, type Peer, type Running } from './peers.js';

const HELP = `usage: npx tsx bench/compare/main.ts [options]

  --rounds R            rounds of every row, peers in turn within each (default 3)
  --quick               smaller runs: 1000 messages per acceptance run, 1000 relayed, 2000 active sessions
  --count N             messages per acceptance run (default 3000)
  --relay-count N       messages per relay run (default 3000)
  --idle N              idle connections for the memory row (default 10000)
  --active N            sessions held in the middle of DATA (default 1000)
  --postfix-connections N  idle and active connections for Postfix (one smtpd process each; default 200)
  --peers LIST          which peers (default postern,postfix,haraka,smtp-sink)
  --skip LIST           rows to leave out: accept, relay, memory
  --dir DIR             where the temp directories go (default ${os.tmpdir()})
  --out FILE            also write the report there (default bench/compare/latest.md; "-": nowhere)
  --help
`;

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
    count: { type: 'string' },
    'relay-count': { type: 'string' },
    idle: { type: 'string', default: '10000' },
    active: { type: 'string' },
    'postfix-connections': { type: 'string', default: '200' },
    peers: { type: 'string', default: 'postern,postfix,haraka,smtp-sink' },
    skip: { type: 'string', default: '' },
    dir: { type: 'string', default: os.tmpdir() },
    out: { type: 'string', default: join(REPO, 'bench/compare/latest.md') },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (opt.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const int = (name: string, text: string, min: number, max: number): number => wholeNumberOption('compare', HELP, name, text, min, max);

const rounds = int('rounds', opt.rounds, 1, 50);
const count = int('count', opt.count ?? (opt.quick ? '1000' : '3000'), 10, 1_000_000);
const relayCount = int('relay-count', opt['relay-count'] ?? (opt.quick ? '1000' : '3000'), 10, 1_000_000);
const idleN = int('idle', opt.idle, 1, 50_000);
const activeN = int('active', opt.active ?? (opt.quick ? '500' : '1000'), 1, 20_000);
const postfixN = int('postfix-connections', opt['postfix-connections'], 1, 2000);
const skip = new Set(opt.skip.split(',').filter(Boolean));
const SIZE = 5120;
const CONCURRENCIES = [1, 20, 100];
const RELAY_CONCURRENCY = 20;
const WARMUP = 200;
const TAIL = buildBodyTail(SIZE);
/** Fewer messages at concurrency 1, where a slow peer (Haraka: ~20 msgs/s) would take minutes. */
const COUNT_AT_1 = Math.min(count, opt.quick ? 300 : 600);
const runCount = (c: number): number => (c === 1 ? COUNT_AT_1 : count);

const wanted = opt.peers.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
for (const w of wanted) {
  if (!ALL_PEERS.some((p) => p.name.toLowerCase() === w)) {
    process.stderr.write(`compare: --peers: unknown peer ${JSON.stringify(w)} (known: ${ALL_PEERS.map((p) => p.name.toLowerCase()).join(', ')})\n`);
    process.exit(2);
  }
}
const chosen = ALL_PEERS.filter((p) => wanted.includes(p.name.toLowerCase()));
const peers = chosen.filter((p) => p.missing === null);

// ── output ───────────────────────────────────────────────────────────────────────────────────

let report = '';
/** Into the report (and on stdout). */
function out(text: string): void {
  report += text;
  process.stdout.write(text);
}
/** Progress, on stderr only. */
function note(text: string): void {
  process.stderr.write(`${text}\n`);
}

function ratio(x: number, base: number | undefined): string {
  return base === undefined || !Number.isFinite(base) || base === 0 || !Number.isFinite(x) ? '-' : `${(x / base).toFixed(2)}×`;
}

/**
 * Each round's rate over the base's rate in the same round (the two ran one after the other), as
 * "lowest–highest×": on a noisy machine the spread says more than the ratio of the medians.
 */
function roundRatios(xs: readonly number[], base: readonly number[] | undefined): string {
  if (base === undefined) return '-';
  const r = xs.map((x, i) => x / base[i]).filter((v) => Number.isFinite(v) && v > 0);
  if (r.length === 0) return '-';
  return `${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)}×`;
}

// ── acceptance ───────────────────────────────────────────────────────────────────────────────

const load = (s: Running, concurrency: number, total: number): Promise<RunResult> => runLoad({
  port: s.port, concurrency, total, tail: TAIL, perConnection: 1, pipelining: true, serverCpu: () => s.cpu(),
});

function failures(r: RunResult): string {
  return r.failed === 0 ? '' : ` FAILED ${r.failed}: ${[...r.failures].map(([why, n]) => `${n}× ${why}`).join('; ')}`;
}

/**
 * Stops (SIGSTOP) every other peer's processes while one is measured, and returns the resume.
 * Idle peers are not always idle: Haraka retries its growing on-disk queue every second even
 * with outbound delivery disabled, which took a quarter of a core from whoever was measured.
 */
function pauseOthers(running: ReadonlyMap<Peer, Running>, measured: Running): () => void {
  const stopped: number[] = [];
  for (const s of running.values()) {
    if (s === measured) continue;
    for (const pid of processTree(s.pid)) {
      try {
        process.kill(pid, 'SIGSTOP');
        stopped.push(pid);
      } catch {
        // Gone already.
      }
    }
  }
  return () => {
    for (const pid of stopped) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // Gone already.
      }
    }
  };
}

async function acceptance(): Promise<void> {
  const running = new Map<Peer, Running>();
  for (const p of peers) {
    note(`accept: starting ${p.name}`);
    running.set(p, await p.start({ kind: 'accept' }, { parentDir: opt.dir, connections: Math.max(...CONCURRENCIES) }));
  }
  for (const [p, s] of running) {
    const w = await load(s, 10, WARMUP);
    note(`accept: ${p.name} warm-up ${w.accepted}/${WARMUP}${failures(w)}`);
  }
  const results = new Map<string, RunResult[]>();
  for (let round = 0; round < rounds && !isAborted(); round++) {
    for (const c of CONCURRENCIES) {
      const order = [...running].map((_, i, a) => a[(i + round) % a.length]);
      for (const [p, s] of order) {
        if (isAborted()) break;
        const resume = pauseOthers(running, s);
        let r: RunResult;
        try {
          r = await load(s, c, runCount(c));
        } finally {
          resume();
        }
        const key = `${p.name}/${c}`;
        results.set(key, [...(results.get(key) ?? []), r]);
        note(`accept: round ${round + 1}/${rounds} ${p.name} c=${c}: ${Math.round(r.rate)} msgs/s p99=${ms(r.p99)}ms`
          + ` cpu=${r.serverCpuS === null ? '-' : `${Math.round((100 * r.serverCpuS) / r.elapsedS)}%`}${failures(r)}`);
      }
    }
  }
  for (const s of running.values()) await s.stop();

  out(`\n### Durable acceptance (${SIZE}-byte messages, ${count} per run (${COUNT_AT_1} at concurrency 1), one per connection, medians of ${rounds})\n\n`);
  const rows: string[][] = [];
  for (const c of CONCURRENCIES) {
    const rate = (name: string): number | undefined => {
      const r = results.get(`${name}/${c}`);
      return r ? median(r.map((x) => x.rate)) : undefined;
    };
    for (const p of running.keys()) {
      const r = results.get(`${p.name}/${c}`);
      if (!r) continue;
      const m = median(r.map((x) => x.rate));
      const failed = r.reduce((s, x) => s + x.failed, 0);
      rows.push([
        String(c), p.name, String(Math.round(m)), ms(median(r.map((x) => x.p50))), ms(median(r.map((x) => x.p99))),
        r[0].serverCpuS === null ? '-' : `${Math.round(median(r.map((x) => (100 * x.serverCpuS!) / x.elapsedS)))}%`,
        String(failed), ratio(m, rate('Postfix')),
        roundRatios(r.map((x) => x.rate), results.get(`Postfix/${c}`)?.map((x) => x.rate)), ratio(m, rate('smtp-sink')),
      ]);
    }
  }
  out(markdownTable(['concurrency', 'server', 'msgs/s', 'p50 ms', 'p99 ms', 'server cpu', 'failed', '÷ Postfix', '÷ Postfix per round', '÷ smtp-sink'], rows));
  out('\nmsgs/s: messages answered 250 ÷ wall time of the run; p50/p99: end of data (the final `.`) → `250`; '
    + 'server cpu: CPU time of the server\'s processes ÷ wall time (100% = one core; Postfix: master and all its children); '
    + '÷ Postfix per round: the lowest and highest of each round\'s rate over Postfix\'s in the same round.\n');
}

// ── relay end to end ─────────────────────────────────────────────────────────────────────────

interface RelayResult { rate: number; acceptRate: number; delivered: number; failed: number }

async function waitForSink(sink: { received(): number }, target: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (sink.received() < target) {
    if (Date.now() > until || isAborted()) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

async function relayOnce(p: Peer): Promise<RelayResult> {
  const sink = await startSmtpSink(SINK_HOST, true);
  try {
    const s = await p.start({ kind: 'relay', sinkPort: sink.port }, { parentDir: opt.dir, connections: RELAY_CONCURRENCY });
    try {
      const w = await load(s, 10, WARMUP);
      if (!(await waitForSink(sink, w.accepted, 120_000))) throw new Error(`${p.name}: the warm-up messages did not all reach the sink (${sink.received()}/${w.accepted})`);
      const base = sink.received();
      const t0 = performance.now();
      const r = await load(s, RELAY_CONCURRENCY, relayCount);
      const all = await waitForSink(sink, base + r.accepted, Math.max(120_000, relayCount * 50));
      const seconds = (performance.now() - t0) / 1000;
      const delivered = sink.received() - base;
      if (!all) note(`relay: ${p.name}: only ${delivered}/${r.accepted} reached the sink before the time-out`);
      return { rate: all ? delivered / seconds : NaN, acceptRate: r.rate, delivered, failed: r.failed };
    } finally {
      await s.stop();
    }
  } finally {
    await sink.stop();
  }
}

async function relay(): Promise<void> {
  const relayPeers = peers.filter((p) => p.relays);
  const results = new Map<Peer, RelayResult[]>();
  for (let round = 0; round < rounds && !isAborted(); round++) {
    for (let i = 0; i < relayPeers.length && !isAborted(); i++) {
      const p = relayPeers[(i + round) % relayPeers.length];
      const r = await relayOnce(p);
      results.set(p, [...(results.get(p) ?? []), r]);
      note(`relay: round ${round + 1}/${rounds} ${p.name}: ${Math.round(r.rate)} msgs/s end to end (accepted at ${Math.round(r.acceptRate)} msgs/s)`
        + `${r.failed ? ` FAILED ${r.failed}` : ''}`);
    }
  }
  const postfix = [...results].find(([p]) => p.name === 'Postfix')?.[1];
  const base = postfix ? median(postfix.map((x) => x.rate)) : undefined;
  out(`\n### Relay end to end (${relayCount} messages of ${SIZE} bytes at client concurrency ${RELAY_CONCURRENCY}, to smtp-sink on ${SINK_HOST}, medians of ${rounds})\n\n`);
  out(markdownTable(['server', 'msgs/s end to end', 'accepting msgs/s', 'delivered', 'failed', '÷ Postfix', '÷ Postfix per round'], [...results].map(([p, r]) => {
    const m = median(r.map((x) => x.rate));
    return [p.name, Number.isNaN(m) ? '-' : String(Math.round(m)), String(Math.round(median(r.map((x) => x.acceptRate)))),
      String(r.reduce((s, x) => s + x.delivered, 0)), String(r.reduce((s, x) => s + x.failed, 0)), ratio(m, base),
      roundRatios(r.map((x) => x.rate), postfix?.map((x) => x.rate))];
  })));
  out('\nmsgs/s end to end: messages ÷ time from the first connection of the run until smtp-sink has received all of them '
    + '(its `-c` counters, `mesg=N`); accepting msgs/s: the same run\'s rate of 250s. A fresh server, queue and sink per run, after a '
    + `warm-up of ${WARMUP} relayed messages.\n`);
}

// ── memory ───────────────────────────────────────────────────────────────────────────────────

/** Opens n connections (at most 200 handshakes in flight), each through `step`; how many made it. */
async function openMany(port: number, n: number, step: (c: Conn) => Promise<boolean>, conns: Conn[]): Promise<number> {
  let next = 0;
  let ok = 0;
  const worker = async (): Promise<void> => {
    while (next < n && !isAborted()) {
      next++;
      const c = trackedConn(port);
      conns.push(c);
      try {
        if (await step(c)) ok++;
      } catch {
        // counted as not open
      }
    }
  };
  await Promise.all(Array.from({ length: 200 }, () => worker()));
  return ok;
}

const ehloOnly = async (c: Conn): Promise<boolean> => (await greetAndEhlo(c)).ok;
const HALF = Math.floor(TAIL.length / 2);
let activeSeq = 1_000_000_000;
/** MAIL, RCPT, DATA, then half the message: a session in the middle of DATA. */
const midData = async (c: Conn): Promise<boolean> => {
  if (!(await greetAndEhlo(c)).ok) return false;
  c.write(PIPELINED);
  const codes = [(await c.read()).code, (await c.read()).code, (await c.read()).code];
  if (codes[2] !== 354) return false;
  c.socket.write(messageHeader(activeSeq++), 'latin1');
  c.write(TAIL.subarray(0, HALF));
  return true;
};

interface MemoryResult { peer: string; kind: string; n: number; open: number; before: TreeMemory; after: TreeMemory; completed: number | null }

async function memoryOnce(p: Peer, kind: 'idle' | 'active', n: number): Promise<MemoryResult> {
  const s = await p.start({ kind: 'accept' }, { parentDir: opt.dir, connections: n });
  const conns: Conn[] = [];
  try {
    await load(s, 10, WARMUP);
    await new Promise((r) => setTimeout(r, 1000));
    const before = s.memory();
    const open = await openMany(s.port, n, kind === 'idle' ? ehloOnly : midData, conns);
    await new Promise((r) => setTimeout(r, 2000));
    const after = s.memory();
    let completed: number | null = null;
    if (kind === 'active') {
      // Finish the messages: the sessions were real ones.
      completed = 0;
      await Promise.all(conns.map(async (c) => {
        try {
          c.write(TAIL.subarray(HALF));
          if ((await c.read()).code === 250) completed!++;
        } catch { /* not completed */ }
      }));
    }
    return { peer: p.name, kind, n, open, before, after, completed };
  } finally {
    for (const c of conns) { c.destroy(); release(c); }
    await s.stop();
  }
}

function raiseOwnFdLimit(): number {
  const r = NOFILE > 0 ? spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${NOFILE}:${NOFILE}`]) : null;
  const soft = Number(spawnSync('prlimit', ['--pid', String(process.pid), '--nofile', '--raw', '--noheadings', '-o', 'SOFT'], { encoding: 'utf8' }).stdout.trim());
  if (r?.status !== 0) note(`compare: could not raise RLIMIT_NOFILE of this process (${r?.stderr.toString().trim() ?? 'no prlimit'}); soft limit ${soft || '?'}`);
  return soft || 1024;
}

async function memory(): Promise<void> {
  const fdLimit = raiseOwnFdLimit();
  const rows: string[][] = [];
  for (const p of peers.filter((x) => x.name !== 'smtp-sink')) {
    const isPostfix = p.name === 'Postfix';
    for (const kind of ['idle', 'active'] as const) {
      let n = isPostfix ? postfixN : kind === 'idle' ? idleN : activeN;
      if (n > fdLimit - 200) {
        note(`memory: ${p.name}: only ${fdLimit - 200} connections (RLIMIT_NOFILE ${fdLimit})`);
        n = fdLimit - 200;
      }
      if (isAborted()) return;
      note(`memory: ${p.name}: ${n} ${kind} connections`);
      const r = await memoryOnce(p, kind, n);
      const perConn = (a: number, b: number): string => (r.open === 0 ? '-' : ((b - a) / r.open).toFixed(1));
      rows.push([
        p.name, kind === 'idle' ? 'idle after EHLO' : 'in DATA (half of 5 KB sent)', `${r.open}/${n}`,
        String(r.after.processes), (r.before.rssKiB / 1024).toFixed(1), (r.after.rssKiB / 1024).toFixed(1),
        perConn(r.before.rssKiB, r.after.rssKiB), perConn(r.before.pssKiB, r.after.pssKiB),
        r.completed === null ? '' : `${r.completed} got 250`,
      ]);
      note(`memory: ${p.name} ${kind}: ${rows[rows.length - 1].join(' | ')}`);
    }
  }
  out(`\n### Memory (one run each; a fresh server, ${WARMUP} messages of warm-up, then the connections; measured 2 s after the last one opened)\n\n`);
  out(markdownTable(['server', 'connections', 'open', 'processes', 'RSS before MiB', 'RSS after MiB', 'ΔRSS KiB/conn', 'ΔPSS KiB/conn', 'note'], rows));
  out(`\nRSS and PSS are summed over the server's processes (/proc/PID/smaps_rollup). Postfix runs one smtpd process per `
    + `connection, so it is measured at ${postfixN} connections (default_process_limit raised to ${postfixN + 50}), not ${idleN}; `
    + 'its summed RSS counts the shared pages of every process again, PSS divides them among the sharers: read its ΔPSS. '
    + 'For the single-process servers the two deltas are the same pages.\n');
}

// ── main ─────────────────────────────────────────────────────────────────────────────────────

installSignalHandlers('compare');

let exitCode = 0;
try {
  const date = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  const versions = chosen.map((p) => `${p.name} ${p.version || '-'}`).join(', ');
  out(`## bench/compare — ${date}\n\n`);
  out(`- command: \`npx tsx bench/compare/main.ts ${process.argv.slice(2).join(' ')}\`\n`);
  out(`- machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB, `
    + `load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} at the start, node ${process.version}, temp dirs in ${opt.dir}\n`);
  out(`- versions: ${versions}\n`);
  for (const p of chosen) {
    out(p.missing === null ? `- ${p.name}: ${p.setup}\n` : `- ${p.name}: skipped — ${p.missing}\n`);
  }
  out('- client: one Node process (bench/lib/smtp-load.ts), EHLO, MAIL/RCPT/DATA pipelined, the message in one write, QUIT\n');
  if (!skip.has('accept')) await acceptance();
  if (!skip.has('relay') && !isAborted()) await relay();
  if (!skip.has('memory') && !isAborted()) await memory();
  if (isAborted()) out('\n(interrupted: incomplete)\n');
  if (opt.out !== '-') {
    writeFileSync(opt.out, report);
    note(`compare: report written to ${opt.out}`);
  }
} catch (err) {
  process.stderr.write(`compare: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  exitCode = 1;
} finally {
  await cleanupAll();
}
process.exit(exitCode);

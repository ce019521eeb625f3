/**
 * A soak: mixed load for a bounded time against `postern start` in a child process, while its
 * RSS (/proc/PID/status VmRSS) and open descriptors (/proc/PID/fd) are sampled. The mix, by
 * seeded random per message:
 *   ok       ok<n>@dst.test     the sink answers 250                       → delivered
 *   soft     soft<n>@dst.test   the sink answers 450 4.2.1 at RCPT once    → retried, delivered
 *   hard     hard<n>@dst.test   the sink answers 550 5.1.1 at RCPT         → bounced, DSN to the sender
 *   blocked  b<n>@blocked.test  the gateway answers 550 5.7.1 at RCPT      → never queued
 * DSNs go to load@src.test, a local Maildir under the gateway's directory, read back here.
 * Used by test/faults/soak.test.ts and bench/faults/soak.ts.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTestConfig } from '../support/child-gateway.js';
import {
  accountFor, faultGatewayYaml, formatAccounting, GatewayProcess, loadMessage, median, ProcSampler, queueSnapshot, RecordingSink, seededRandom, sleep,
  startLoad, until, type Accounting, type ProcSample, type QueueSnapshot, type SendOutcome,
} from './fault-harness.js';

export type SoakKind = 'ok' | 'soft' | 'hard' | 'blocked';

export interface SoakOptions {
  readonly seed: number;
  readonly durationMs: number;
  readonly concurrency: number;
  /** Pause between a worker's messages (sets the rate). */
  readonly pauseMs: number;
  readonly sampleEveryMs: number;
  readonly drainTimeoutMs: number;
  readonly size?: number;
  readonly log?: (line: string) => void;
}

/** A sampled quantity: medians of windows (idle before the load, early and late in it, idle after), and maxima. */
export interface WindowStats {
  readonly idle: number;
  readonly early: number;
  /** The highest sample of the early window. */
  readonly earlyMax: number;
  readonly late: number;
  readonly after: number;
  readonly max: number;
}

export interface SoakReport {
  readonly accounting: Accounting;
  readonly final: QueueSnapshot;
  readonly kinds: Readonly<Record<SoakKind, number>>;
  /** Problems in the per-kind accounting (must be empty). */
  readonly problems: readonly string[];
  readonly dsns: number;
  readonly samples: readonly ProcSample[];
  /** RSS (KiB) and fds: idle before the load, medians of the early and late windows of the load, and idle after it. */
  readonly rss: WindowStats;
  readonly fds: WindowStats;
  /** RSS trend over the load (least-squares slope), in KiB per 1000 messages: ~0 when flat. */
  readonly rssGrowthPer1000: number;
  readonly loadMs: number;
  readonly elapsedMs: number;
  summary(): string;
}

const MiB = 1024;
/** Outbound connections at most: max_connections_per_destination in the scenario's config. */
const OUTBOUND = 5;

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const log = o.log ?? (() => undefined);
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'postern-fault-soak-'));
  const softSeen = new Set<string>();
  const sink = await new RecordingSink({
    rcpt: (to) => {
      if (to.startsWith('hard')) return '550 5.1.1 no such user';
      if (to.startsWith('soft') && !softSeen.has(to)) {
        softSeen.add(to);
        return '450 4.2.1 mailbox busy, try later';
      }
      return undefined;
    },
  }).start();
  const kindCache = new Map<number, SoakKind>();
  const kindOf = (n: number): SoakKind => {
    let k = kindCache.get(n);
    if (k === undefined) {
      const x = seededRandom(o.seed + n * 7919)();
      k = x < 0.7 ? 'ok' : x < 0.82 ? 'soft' : x < 0.9 ? 'hard' : 'blocked';
      kindCache.set(n, k);
    }
    return k;
  };
  const rcpt = (n: number): string => (kindOf(n) === 'blocked' ? `b${n}@blocked.test` : `${kindOf(n)}${n}@dst.test`);
  const gw = new GatewayProcess(writeTestConfig(dir, [
    faultGatewayYaml({ relayPort: sink.port, leaseTime: '10s', perDestination: OUTBOUND, replyTimeout: '5s' }),
    'recipients: { blocked: ["@blocked.test"] }',
  ].join('\n')));
  let sampler: ProcSampler | null = null;
  try {
    await gw.start();
    sampler = new ProcSampler(gw.pid, o.sampleEveryMs);
    await sleep(Math.max(1000, 2 * o.sampleEveryMs));
    const idleSamples = sampler.samples.length;
    const tLoad = Date.now();
    const load = startLoad({
      target: () => gw.port(), count: Infinity, stopAfterMs: o.durationMs, concurrency: o.concurrency, perConnection: 10, pauseMs: o.pauseMs,
      message: (n) => loadMessage(n, 'load@src.test', rcpt(n), o.size ?? 2048, `soak${o.seed}`),
    });
    let lastLog = Date.now();
    while (!(await Promise.race([load.done.then(() => true), sleep(1000).then(() => false)]))) {
      if (Date.now() - lastLog >= 10_000) {
        const s = sampler.samples[sampler.samples.length - 1];
        log(`${Math.round((Date.now() - tLoad) / 1000)}s: accepted ${load.count('accepted')}, delivered ${sink.delivered.size}, rss ${(s.rssKiB / MiB).toFixed(1)} MiB, fds ${s.fds}`);
        lastLog = Date.now();
      }
    }
    const loadMs = Date.now() - tLoad;
    const loadEnd = sampler.samples.length;
    const queueDir = join(dir, 'queue');
    const accepted = [...load.outcomes].filter(([, x]) => x.kind === 'accepted').map(([n]) => n);
    const mustArrive = accepted.filter((n) => kindOf(n) !== 'hard').map(rcpt);
    await until('the queue to drain', () => {
      if (!mustArrive.every((r) => sink.delivered.has(r))) return false;
      const s = queueSnapshot(queueDir, { integrity: false });
      return (s.states.queued ?? 0) === 0 && s.leased === 0;
    }, o.drainTimeoutMs, () => `${mustArrive.filter((r) => !sink.delivered.has(r)).length} not delivered`);
    // Idle again: outbound connections time out (connection_idle_time), then a few samples.
    await sleep(Math.max(2000, 3 * o.sampleEveryMs));
    sampler.stop();
    const samples = sampler.samples;
    const stderr = gw.current!.stderr;
    const exit = await gw.stop();
    if (exit !== 0) throw new Error(`the gateway exited with ${exit}: ${stderr().slice(-2000)}`);
    const final = queueSnapshot(queueDir);
    const accounting = accountFor(load.outcomes, rcpt, sink.delivered, (r) => final.recipients.get(r) === 'bounced');

    // Per kind: what each message must have come to.
    const problems: string[] = [];
    const kinds: Record<SoakKind, number> = { ok: 0, soft: 0, hard: 0, blocked: 0 };
    const dsnFor = readDsnRecipients(join(dir, 'var', 'mail', 'src.test', 'load', 'new'));
    for (const [n, out] of load.outcomes) {
      const k = kindOf(n);
      kinds[k]++;
      problems.push(...kindProblem(k, rcpt(n), out, sink.delivered.get(rcpt(n)) ?? 0, final.recipients.get(rcpt(n)), dsnFor.get(rcpt(n)) ?? 0));
    }
    const values = (from: number, to: number, pick: (s: ProcSample) => number): number[] => samples.slice(from, Math.max(from + 1, to)).map(pick);
    const window = (from: number, to: number, pick: (s: ProcSample) => number): number => median(values(from, to, pick));
    const span = loadEnd - idleSamples;
    const early = [idleSamples + Math.floor(span * 0.2), idleSamples + Math.floor(span * 0.45)] as const;
    const late = [loadEnd - Math.ceil(span * 0.25), loadEnd] as const;
    const stats = (pick: (s: ProcSample) => number): WindowStats => ({
      idle: window(0, idleSamples, pick), early: window(early[0], early[1], pick), earlyMax: Math.max(...values(early[0], early[1], pick)),
      late: window(late[0], late[1], pick),
      after: window(samples.length - 2, samples.length, pick), max: Math.max(...samples.map(pick)),
    });
    const rss = stats((s) => s.rssKiB);
    const fds = stats((s) => s.fds);
    const perMs = slope(samples.slice(idleSamples, loadEnd).map((s) => [s.t, s.rssKiB] as const));
    const rssGrowthPer1000 = (perMs * loadMs * 1000) / Math.max(1, load.outcomes.size);
    const elapsedMs = Date.now() - t0;
    return {
      accounting, final, kinds, problems, dsns: [...dsnFor.values()].reduce((a, b) => a + b, 0), samples, rss, fds, rssGrowthPer1000, loadMs, elapsedMs,
      summary: () => [
        `seed=${o.seed} load=${(loadMs / 1000).toFixed(1)}s elapsed=${(elapsedMs / 1000).toFixed(1)}s mix: ${Object.entries(kinds).map(([k, v]) => `${k} ${v}`).join(', ')}`,
        formatAccounting(accounting),
        `DSNs received=${[...dsnFor.values()].reduce((a, b) => a + b, 0)} per-kind problems=${problems.length}${problems.length ? `: ${problems.slice(0, 10).join('; ')}` : ''}`,
        `rss MiB: idle ${(rss.idle / MiB).toFixed(1)}, early ${(rss.early / MiB).toFixed(1)} (up to ${(rss.earlyMax / MiB).toFixed(1)}), late ${(rss.late / MiB).toFixed(1)}, after ${(rss.after / MiB).toFixed(1)}, max ${(rss.max / MiB).toFixed(1)} (${samples.length} samples every ${o.sampleEveryMs} ms); trend ${rssGrowthPer1000.toFixed(1)} KiB per 1000 messages (meaningful only over several GC cycles: the long soak)`,
        `fds: idle ${fds.idle}, early ${fds.early}, late ${fds.late}, after ${fds.after}, max ${fds.max}`,
        `queue at the end: ${JSON.stringify(final.states)} leased=${final.leased} dsns=${final.dsns} integrity=${final.integrity}`,
      ].join('\n'),
    };
  } finally {
    sampler?.stop();
    await gw.kill().catch(() => undefined);
    await sink.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Least-squares slope of y over x. */
function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return sxx === 0 ? 0 : sxy / sxx;
}

/**
 * Whether RSS and descriptors stayed flat (empty: yes), for a load of `concurrency` clients.
 *
 * Memory: V8 grows its heap in steps and collects in a sawtooth, so a process that does not leak
 * still moves by tens of MiB (on this machine, under the soak's load, RSS climbs ~0.6 MiB/s to
 * ~200 MiB, then drops back to ~140 MiB at a major GC, about every 100 s, and then stays ~163).
 * A leak grows with the number of messages, so that the process goes above anything it reached
 * while it was fresh. The test: the median of the late window (last quarter of the load) may not
 * exceed the highest sample of the early steady state (20–45 % of the load, after warm-up) by
 * more than 20 % of it or 24 MiB, whichever is larger. In the 20 s test about 1000 messages pass
 * between the windows, so anything keeping ≳25 KiB per message (a body, a session's buffers)
 * fails while the sawtooth does not; the long soak (bench/faults/soak.ts) sees ten to a hundred
 * times more messages and so much smaller leaks, and prints the RSS trend per 1000 messages.
 *
 * Descriptors: at most one per client connection and per outbound connection above idle, plus
 * a few (DNS, timers, the Maildir); the late window within that of the early one; and back to
 * idle (±2) once the load is over and idle connections have closed: a descriptor leaked per
 * message or per session shows at once.
 */
export function soakFlatness(r: SoakReport, load: { readonly concurrency: number }): string[] {
  const out: string[] = [];
  const rssMargin = Math.max(24 * MiB, 0.2 * r.rss.earlyMax);
  if (r.rss.late > r.rss.earlyMax + rssMargin) out.push(`RSS grew: early up to ${r.rss.earlyMax} KiB, late ${r.rss.late} KiB (margin ${rssMargin})`);
  const connections = load.concurrency + OUTBOUND;
  if (r.fds.max > r.fds.idle + connections + 8) out.push(`descriptors: max ${r.fds.max}, idle ${r.fds.idle}`);
  if (Math.abs(r.fds.late - r.fds.early) > connections) out.push(`descriptors moved: early ${r.fds.early}, late ${r.fds.late}`);
  if (r.fds.after > r.fds.idle + 2) out.push(`descriptors not back to idle: ${r.fds.after} vs ${r.fds.idle}`);
  return out;
}

function kindProblem(k: SoakKind, r: string, out: SendOutcome, deliveries: number, state: string | undefined, dsns: number): string[] {
  if (out.kind === 'unknown' || out.kind === 'unsent') return [`${r}: ${out.kind} (${out.error})`];
  if (k === 'blocked') {
    if (out.kind !== 'refused' || out.stage !== 'RCPT' || !out.reply.startsWith('550 5.7.1')) return [`${r}: blocked but ${JSON.stringify(out)}`];
    return deliveries > 0 ? [`${r}: blocked but delivered`] : [];
  }
  if (out.kind !== 'accepted') return [`${r}: not accepted: ${JSON.stringify(out)}`];
  if (k === 'hard') {
    if (state !== 'bounced') return [`${r}: hard but ${state}`];
    return dsns === 1 ? [] : [`${r}: ${dsns} DSNs`];
  }
  if (deliveries === 0) return [`${r}: ${k} but not delivered (${state})`];
  return dsns > 0 ? [`${r}: delivered but got a DSN`] : [];
}

/** Final-Recipient of every DSN in a Maildir's new/ → how many DSNs name it. */
function readDsnRecipients(maildirNew: string): Map<string, number> {
  const out = new Map<string, number>();
  if (!existsSync(maildirNew)) return out;
  for (const f of readdirSync(maildirNew)) {
    const text = readFileSync(join(maildirNew, f), 'latin1');
    for (const m of text.matchAll(/^Final-Recipient: *rfc822; *(\S+)/gim)) {
      const r = m[1].toLowerCase();
      out.set(r, (out.get(r) ?? 0) + 1);
    }
  }
  return out;
}

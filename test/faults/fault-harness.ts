/**
 * Shared parts of the fault tests (test/faults/*.test.ts) and their long versions
 * (bench/faults/*.ts): seeded randomness, a load generator that knows what became of every
 * message it sent, a recording sink, a restartable `postern start` child, a look into the
 * queue database, the accounting that finds lost messages, and /proc samples.
 *
 * Every message the load sends has its own recipient (`<prefix><n>@<domain>`) and Message-ID,
 * so deliveries are counted per message: a message is *lost* when it got `250` and is neither
 * delivered (the sink answered 250 to its data at least once) nor bounced (its recipient has a
 * final hard outcome in the store); *duplicates* are deliveries beyond the first (at-least-once
 * allows them, they are reported).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SmtpTestClient, type WireReply } from '../support/smtp-test-client.js';
import { startChildGateway, type ChildGateway } from '../support/child-gateway.js';
import { SinkListener, type SinkAction, type SinkMessage, type SinkScript } from '../support/sink-listener.js';

// ── randomness and waiting ─────────────────────────────────────────────────────────────────

/** mulberry32: a small seeded PRNG, values in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed: FAULT_SEED from the environment (to replay a run), else a fresh one. Printed by the caller. */
export function chooseSeed(): number {
  const env = process.env.FAULT_SEED;
  return env !== undefined && env !== '' ? Number(env) >>> 0 : Math.floor(Math.random() * 2 ** 31);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it holds; throws after `timeoutMs` with `what` (and `detail()` when given). */
export async function until(what: string, check: () => boolean, timeoutMs: number, detail?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail ? `: ${detail()}` : ''}`);
    await sleep(50);
  }
}

// ── messages ───────────────────────────────────────────────────────────────────────────────

export interface LoadMessage {
  readonly from: string;
  readonly to: string;
  readonly data: string;
}

/** A message of about `size` bytes with a unique Message-ID; no line starts with a dot. */
export function loadMessage(n: number, from: string, to: string, size = 1024, tag = 'load'): LoadMessage {
  const head = `From: <${from}>\r\nTo: <${to}>\r\nSubject: fault load ${n}\r\nMessage-ID: <${n}.${tag}@load.test>\r\n\r\n`;
  const line = `${'x'.repeat(76)}\r\n`;
  const lines = Math.max(1, Math.ceil((size - head.length) / line.length));
  return { from, to, data: head + line.repeat(lines) };
}

// ── load generator ─────────────────────────────────────────────────────────────────────────

/**
 * What became of one message:
 * - accepted: `250` to its end of data (queue id kept) — it must arrive;
 * - refused: a definite non-2xx/3xx reply at some stage — it need not arrive;
 * - unknown: the final dot was written, no reply came (the server died) — it may or may not arrive;
 * - unsent: never got as far as the final dot (gave up connecting).
 */
export type SendOutcome =
  | { readonly kind: 'accepted'; readonly queueId: string }
  | { readonly kind: 'refused'; readonly stage: string; readonly reply: string }
  | { readonly kind: 'unknown'; readonly error: string }
  | { readonly kind: 'unsent'; readonly error: string };

export interface LoadOptions {
  /** The gateway's port now; waits while it is down (restarting). */
  readonly target: () => Promise<number>;
  /** Messages to send (numbered first…first+count-1); Infinity with `stopAfterMs` or `stop()`. */
  readonly count: number;
  /** The first message's number (default 0): runs one after another keep numbers unique. */
  readonly first?: number;
  readonly concurrency: number;
  /** Messages per connection, back to back (default 5). */
  readonly perConnection?: number;
  readonly message: (n: number) => LoadMessage;
  /** Stop starting messages after this long. */
  readonly stopAfterMs?: number;
  /** Pause between messages of a worker (default 0). */
  readonly pauseMs?: number;
  /** Per reply (default 10 s). */
  readonly replyTimeoutMs?: number;
  /** Called as each message's outcome is known. */
  readonly onOutcome?: (n: number, o: SendOutcome) => void;
}

class BeforeDot extends Error {}

export function countOutcomes(outcomes: ReadonlyMap<number, SendOutcome>, kind: SendOutcome['kind']): number {
  let n = 0;
  for (const o of outcomes.values()) if (o.kind === kind) n++;
  return n;
}

/** Numbers of the messages that got 250. */
export function acceptedNumbers(outcomes: ReadonlyMap<number, SendOutcome>): number[] {
  return [...outcomes].filter(([, o]) => o.kind === 'accepted').map(([n]) => n);
}

/** Runs the load; `outcomes[n]` for every message started. */
export class LoadRun {
  readonly outcomes = new Map<number, SendOutcome>();
  readonly done: Promise<void>;
  /** Connections that failed before the final dot and were retried. */
  reconnects = 0;
  private next: number;
  private stopped = false;
  private readonly started = Date.now();

  constructor(private readonly o: LoadOptions) {
    this.next = o.first ?? 0;
    this.done = Promise.all(Array.from({ length: o.concurrency }, () => this.worker())).then(() => undefined);
  }

  /** Starts no more messages; those in flight finish. */
  stop(): void {
    this.stopped = true;
  }

  count(kind: SendOutcome['kind']): number {
    return countOutcomes(this.outcomes, kind);
  }

  private take(): number | null {
    if (this.stopped || this.next >= (this.o.first ?? 0) + this.o.count) return null;
    if (this.o.stopAfterMs !== undefined && Date.now() - this.started >= this.o.stopAfterMs) return null;
    return this.next++;
  }

  private settle(n: number, o: SendOutcome): void {
    this.outcomes.set(n, o);
    this.o.onOutcome?.(n, o);
  }

  private async worker(): Promise<void> {
    // The message this worker is on: the session moves it on; after a failure before its final
    // dot it is tried again on a new connection.
    const at: { n: number | null } = { n: this.take() };
    let failures = 0;
    while (at.n !== null) {
      let c: SmtpTestClient | null = null;
      try {
        const port = await this.o.target();
        c = await SmtpTestClient.connect(port);
        await this.session(c, at);
        failures = 0;
      } catch (err) {
        // Nothing of message at.n was committed (no final dot yet): try it again on a new connection.
        if (!(err instanceof BeforeDot) && !isConnectError(err)) throw err;
        this.reconnects++;
        if (++failures > 200) {
          this.settle(at.n, { kind: 'unsent', error: String(err) });
          at.n = this.take();
          failures = 0;
        } else {
          await sleep(Math.min(200, 10 * failures));
        }
      } finally {
        c?.close();
      }
    }
  }

  /**
   * Sends messages on one connection, from `at.n` on, moving `at.n` to the next unsent message
   * (null: none left); throws BeforeDot when `at.n` must be tried again.
   */
  private async session(c: SmtpTestClient, at: { n: number | null }): Promise<void> {
    const timeout = this.o.replyTimeoutMs ?? 10_000;
    const reply = async (): Promise<WireReply> => {
      try {
        return await c.reply(timeout);
      } catch (err) {
        throw new BeforeDot(String(err));
      }
    };
    const text = (r: WireReply): string => r.raw.trim().split('\r\n').pop() ?? '';
    const greeting = await reply();
    if (greeting.code !== 220) throw new BeforeDot(`greeting ${text(greeting)}`);
    c.write('EHLO client.test\r\n');
    if ((await reply()).code !== 250) throw new BeforeDot('EHLO refused');
    for (let i = 0; at.n !== null && i < (this.o.perConnection ?? 5); i++) {
      const n: number = at.n;
      const m = this.o.message(n);
      const steps: ReadonlyArray<readonly [string, string, number]> = [
        ['MAIL', `MAIL FROM:<${m.from}>\r\n`, 250], ['RCPT', `RCPT TO:<${m.to}>\r\n`, 250], ['DATA', 'DATA\r\n', 354],
      ];
      let refused = false;
      for (const [stage, line, want] of steps) {
        c.write(line);
        const r = await reply();
        if (r.code === want) continue;
        this.settle(n, { kind: 'refused', stage, reply: text(r) });
        refused = true;
        if (r.code === 421 || stage === 'DATA') {
          at.n = this.take(); // the session is over (or out of step)
          return;
        }
        c.write('RSET\r\n');
        await reply();
        break;
      }
      if (!refused) {
        c.write(`${m.data}.\r\n`);
        try {
          const r = await c.reply(timeout);
          if (r.code === 250) this.settle(n, { kind: 'accepted', queueId: /queued as (\S+)/.exec(r.lines[0])?.[1] ?? '' });
          else this.settle(n, { kind: 'refused', stage: 'end of data', reply: text(r) });
        } catch (err) {
          this.settle(n, { kind: 'unknown', error: String(err) });
          at.n = this.take();
          return;
        }
      }
      if (this.o.pauseMs) await sleep(this.o.pauseMs);
      at.n = this.take();
    }
    c.write('QUIT\r\n');
  }
}

function isConnectError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE';
}

export function startLoad(o: LoadOptions): LoadRun {
  return new LoadRun(o);
}

// ── recording sink ─────────────────────────────────────────────────────────────────────────

/**
 * A SinkListener that counts, per recipient, the deliveries it answered `250` to (the sink's own
 * `messages` also holds data it then refused or dropped). `decide` picks the action at each step
 * (undefined: the normal reply).
 */
export class RecordingSink {
  readonly sink: SinkListener;
  /** recipient → deliveries answered 250. */
  readonly delivered = new Map<string, number>();
  /** Bodies of the first delivery per recipient. */
  readonly bodies = new Map<string, Buffer>();

  constructor(decide: {
    greeting?: () => SinkAction | undefined;
    mail?: () => SinkAction | undefined;
    rcpt?: (to: string) => SinkAction | undefined;
    endOfData?: (msg: SinkMessage) => SinkAction | undefined;
  } = {}) {
    const script: SinkScript = {
      // The greeting is read once per connection: a getter makes it a decision per connection.
      get greeting(): SinkAction | undefined {
        return decide.greeting?.();
      },
      mail: () => decide.mail?.(),
      rcpt: (to) => decide.rcpt?.(to),
      endOfData: (msg) => {
        const a = decide.endOfData?.(msg) ?? '250 2.0.0 Ok: queued';
        if (typeof a === 'string' && a.startsWith('250')) {
          for (const r of msg.accepted) {
            this.delivered.set(r, (this.delivered.get(r) ?? 0) + 1);
            if (!this.bodies.has(r)) this.bodies.set(r, msg.body);
          }
        }
        return a;
      },
    };
    this.sink = new SinkListener(script, 'faultsink.test');
  }

  async start(host = '127.0.0.2'): Promise<this> {
    await this.sink.start(host);
    return this;
  }

  get port(): number {
    return this.sink.port;
  }

  /** Deliveries answered 250, duplicates included. */
  get deliveries(): number {
    let n = 0;
    for (const v of this.delivered.values()) n += v;
    return n;
  }

  stop(): Promise<void> {
    return this.sink.stop();
  }
}

// ── the gateway's configuration ────────────────────────────────────────────────────────────

export interface FaultGatewayConfig {
  /** dst.test is relayed to the sink on 127.0.0.2 at this port; without it, found by MX at `mxPort`. */
  readonly relayPort?: number;
  readonly mxPort?: number;
  readonly leaseTime: string;
  /** delivery.concurrency (default 10) and max_connections_per_destination (default 5). */
  readonly concurrency?: number;
  readonly perDestination?: number;
  /** Every client timeout of the delivery (connect: at most 2s). */
  readonly replyTimeout?: string;
  /** Retries: first after `initial`, each next × `factor`, at most `max` apart; no jitter (default every 1s). */
  readonly retry?: { readonly initial: string; readonly factor: number; readonly max: string };
}

/**
 * The YAML the fault scenarios add to a test config: src.test local (DSNs land in its Maildirs),
 * dst.test relayed to the sink (or found by MX), short leases, timeouts and retry intervals.
 */
export function faultGatewayYaml(o: FaultGatewayConfig): string {
  const t = o.replyTimeout ?? '2s';
  const r = o.retry ?? { initial: '1s', factor: 1, max: '1s' };
  return [
    o.relayPort !== undefined
      ? `domains: { local: [src.test], relay: { dst.test: { next_hop: "smtp://127.0.0.2:${o.relayPort}", tls: none } } }`
      : 'domains: { local: [src.test] }',
    `delivery: { ${o.mxPort !== undefined ? `smtp_port: ${o.mxPort}, tls: none, ` : ''}lease_time: ${o.leaseTime}, concurrency: ${o.concurrency ?? 10},`,
    `  max_connections_per_destination: ${o.perDestination ?? 5}, connection_idle_time: 500ms, timeouts: { connect: 2s, greeting: ${t},`,
    `  helo: ${t}, mail: ${t}, rcpt: ${t}, data_init: ${t}, data_block: ${t}, data_term: ${t}, rset: ${t}, quit: 1s } }`,
    `bounce_profiles: { default: { initial_retry: ${r.initial}, backoff_factor: ${r.factor}, max_retry_interval: ${r.max}, max_retries: 100000, jitter: 0 } }`,
  ].join('\n');
}

// ── the gateway in a child process, killed and restarted ───────────────────────────────────

export class GatewayProcess {
  current: ChildGateway | null = null;
  /** Start-up times in ms, one per start. */
  readonly startTimes: number[] = [];
  kills = 0;
  private up!: Promise<number>;
  private resolveUp!: (port: number) => void;

  constructor(readonly configFile: string) {
    this.down();
  }

  private down(): void {
    this.up = new Promise((resolve) => {
      this.resolveUp = resolve;
    });
  }

  /** The port once the gateway listens (waits through a restart). */
  port(): Promise<number> {
    return this.up;
  }

  get pid(): number {
    const pid = this.current?.child.pid;
    if (pid === undefined) throw new Error('the gateway is not running');
    return pid;
  }

  async start(): Promise<ChildGateway> {
    const t0 = Date.now();
    const gw = await startChildGateway(this.configFile, 30_000);
    this.startTimes.push(Date.now() - t0);
    this.current = gw;
    this.resolveUp(gw.port);
    return gw;
  }

  /** SIGKILL, as a crash: no shutdown code runs. */
  async kill(): Promise<void> {
    const gw = this.current;
    if (!gw) return;
    this.down();
    this.current = null;
    gw.child.kill('SIGKILL');
    const how = await gw.exited;
    if (how !== 'SIGKILL') throw new Error(`the gateway exited by itself (${how}) before it was killed: ${gw.stderr().slice(-2000)}`);
    this.kills++;
  }

  /** SIGTERM (graceful), SIGKILL after `graceMs`; resolves with how it exited. */
  async stop(graceMs = 10_000): Promise<number | string | null> {
    const gw = this.current;
    if (!gw) return null;
    this.current = null;
    if (gw.child.exitCode !== null || gw.child.signalCode !== null) return gw.child.exitCode ?? gw.child.signalCode;
    gw.child.kill('SIGTERM');
    const timer = setTimeout(() => gw.child.kill('SIGKILL'), graceMs);
    try {
      return await gw.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

// ── the queue database, read directly ──────────────────────────────────────────────────────

export interface QueueSnapshot {
  readonly integrity: string;
  readonly states: Readonly<Record<string, number>>;
  /** Messages with a lease (owner set), whatever its expiry. */
  readonly leased: number;
  /** recipient address → state, for received messages. */
  readonly recipients: ReadonlyMap<string, string>;
  /** DSNs the gateway generated. */
  readonly dsns: number;
}

/** Reads the SQLite queue at `<queueDir>/queue.db`; safe beside a running gateway (reads only). */
export function queueSnapshot(queueDir: string, opts: { integrity?: boolean } = {}): QueueSnapshot {
  const db = new Database(join(queueDir, 'queue.db'), { fileMustExist: true, timeout: 10_000 });
  try {
    const integrity = opts.integrity === false ? 'not checked' : (db.pragma('integrity_check', { simple: true }) as string);
    const states: Record<string, number> = {};
    for (const r of db.prepare('SELECT state, count(*) AS n FROM messages GROUP BY state').all() as { state: string; n: number }[]) states[r.state] = r.n;
    const leased = (db.prepare('SELECT count(*) AS n FROM messages WHERE lease_owner IS NOT NULL').get() as { n: number }).n;
    const recipients = new Map<string, string>();
    const rows = db.prepare("SELECT r.address, r.state FROM recipients r JOIN messages m ON m.id = r.message_id WHERE m.origin = 'received'").all() as { address: string; state: string }[];
    for (const r of rows) recipients.set(r.address.toLowerCase(), r.state);
    const dsns = (db.prepare("SELECT count(*) AS n FROM messages WHERE origin = 'dsn'").get() as { n: number }).n;
    return { integrity, states, leased, recipients, dsns };
  } finally {
    db.close();
  }
}

// ── accounting ─────────────────────────────────────────────────────────────────────────────

export interface Accounting {
  readonly sent: number;
  readonly accepted: number;
  readonly refused: number;
  readonly unknown: number;
  readonly unsent: number;
  /** Accepted messages delivered at least once. */
  readonly delivered: number;
  /** Accepted messages with a final hard outcome (bounced / expired) in the store. */
  readonly bounced: number;
  /** Accepted, and neither delivered nor bounced: must be empty. */
  readonly lost: readonly string[];
  /** Deliveries beyond the first, over every recipient. */
  readonly duplicates: number;
  /** Messages whose reply never came but which arrived all the same. */
  readonly unknownDelivered: number;
  /** Deliveries of recipients the load never sent, or that were refused: must be empty. */
  readonly phantoms: readonly string[];
  /** Refusals by reply, e.g. "RCPT 550 5.7.1 …" → count. */
  readonly refusals: Readonly<Record<string, number>>;
}

/**
 * Squares what the load was told with what arrived: `recipientOf(n)` is message n's recipient,
 * `delivered` the sink's counts, `finalHard` the recipients the store gave up on.
 */
export function accountFor(
  outcomes: ReadonlyMap<number, SendOutcome>,
  recipientOf: (n: number) => string,
  delivered: ReadonlyMap<string, number>,
  finalHard: (rcpt: string) => boolean,
): Accounting {
  const lost: string[] = [];
  const sentTo = new Map<string, SendOutcome>();
  let deliveredCount = 0;
  let bounced = 0;
  let unknownDelivered = 0;
  const refusals: Record<string, number> = {};
  for (const [n, o] of outcomes) {
    const rcpt = recipientOf(n).toLowerCase();
    sentTo.set(rcpt, o);
    const got = delivered.get(rcpt) ?? 0;
    if (o.kind === 'accepted') {
      if (got > 0) deliveredCount++;
      else if (finalHard(rcpt)) bounced++;
      else lost.push(`${rcpt} (queue id ${o.queueId})`);
    } else if (o.kind === 'unknown' && got > 0) {
      unknownDelivered++;
    } else if (o.kind === 'refused') {
      const key = `${o.stage} ${o.reply.replace(/^(\d{3}(?: \d\.\d{1,3}\.\d{1,3})?).*$/, '$1')}`;
      refusals[key] = (refusals[key] ?? 0) + 1;
    }
  }
  let duplicates = 0;
  const phantoms: string[] = [];
  for (const [rcpt, count] of delivered) {
    duplicates += count - 1;
    const o = sentTo.get(rcpt.toLowerCase());
    if (o === undefined || o.kind === 'refused' || o.kind === 'unsent') phantoms.push(rcpt);
  }
  return {
    sent: outcomes.size, accepted: countOutcomes(outcomes, 'accepted'), refused: countOutcomes(outcomes, 'refused'),
    unknown: countOutcomes(outcomes, 'unknown'), unsent: countOutcomes(outcomes, 'unsent'), delivered: deliveredCount, bounced, lost, duplicates, unknownDelivered, phantoms, refusals,
  };
}

export function formatAccounting(a: Accounting): string {
  return [
    `sent=${a.sent} accepted(250)=${a.accepted} refused=${a.refused} no-reply=${a.unknown} unsent=${a.unsent}`,
    `delivered=${a.delivered} bounced=${a.bounced} lost=${a.lost.length} duplicates=${a.duplicates} no-reply-but-delivered=${a.unknownDelivered}`,
    ...(Object.keys(a.refusals).length > 0 ? [`refusals: ${Object.entries(a.refusals).map(([k, v]) => `${k} ×${v}`).join(', ')}`] : []),
    ...(a.lost.length > 0 ? [`LOST: ${a.lost.slice(0, 20).join(', ')}${a.lost.length > 20 ? ' …' : ''}`] : []),
    ...(a.phantoms.length > 0 ? [`PHANTOMS: ${a.phantoms.slice(0, 20).join(', ')}`] : []),
  ].join('\n');
}

// ── /proc samples ──────────────────────────────────────────────────────────────────────────

export interface ProcSample {
  /** ms since the start of sampling. */
  readonly t: number;
  readonly rssKiB: number;
  readonly fds: number;
}

export function procSample(pid: number, t: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
  return { t, rssKiB, fds: readdirSync(`/proc/${pid}/fd`).length };
}

/** Samples `pid` every `everyMs` until stopped. */
export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly t0 = Date.now();

  constructor(private readonly pid: number, everyMs: number) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  sample(): ProcSample | undefined {
    try {
      const s = procSample(this.pid, Date.now() - this.t0);
      this.samples.push(s);
      return s;
    } catch {
      return undefined; // the process is gone
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

// ── tmpfs ──────────────────────────────────────────────────────────────────────────────────

/** Mounts a tmpfs of `size` (e.g. "16m") on `dir`; false when that is not allowed here (not root). */
export function mountTmpfs(dir: string, size: string): boolean {
  return spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]).status === 0;
}

/** Changes the size of the tmpfs on `dir` (rounded up to whole MiB). */
export function resizeTmpfs(dir: string, bytes: number): void {
  const r = spawnSync('mount', ['-o', `remount,size=${Math.ceil(bytes / 1024 ** 2)}m`, dir]);
  if (r.status !== 0) throw new Error(`cannot resize the tmpfs on ${dir}: ${r.stderr}`);
}

export function unmount(dir: string): void {
  // Lazy: a descriptor still open somewhere must not leave the mount behind.
  if (spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir]);
}

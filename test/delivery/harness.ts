/**
 * Delivery tests' world: a loopback DNS server with the test's zone (MX records naming hosts on
 * 127.0.0.2, 127.0.0.3, …), sink listeners on those addresses, and a real gateway that receives
 * over SMTP and delivers with a test clock. Local domain src.test: DSNs to the senders land in
 * Maildirs under <dir>/mail, where tests read them back.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AcceptAllPolicyEngine } from '../../src/policy/session-policy.js';
import { LoopbackDnsServer, type ZoneRecord } from '../support/loopback-dns-server.js';
import { startSinks, type SinkListener, type SinkScript } from '../support/sink-listener.js';
import { startTestGateway, type TestGateway } from '../support/test-gateway.js';
import { SmtpTestClient } from '../support/smtp-test-client.js';
import { ManualClock } from './manual-clock.js';
import type { QueuedMessage } from '../../src/store/queue-types.js';

export const T0 = Date.UTC(2026, 10, 28, 8, 0, 0);

export interface World {
  readonly gw: TestGateway;
  readonly clock: ManualClock;
  readonly dns: LoopbackDnsServer;
  readonly sinks: SinkListener[];
  /** Sends over SMTP to the gateway; returns the queue id. */
  send(to: string[], opts?: { from?: string; data?: string; mailParams?: string; rcptParams?: string[] }): Promise<string>;
  /** Lets the scheduler run until nothing is in flight and nothing is due. */
  settle(): Promise<void>;
  /** Moves the clock and lets the queue settle. */
  advance(ms: number): Promise<void>;
  message(id: string): QueuedMessage;
  /** Messages in a local Maildir (<dir>/mail/<domain>/<local>/new), oldest first. */
  maildir(address: string): Buffer[];
  stop(): Promise<void>;
}

export interface WorldOptions {
  readonly sinks: readonly SinkScript[];
  /** Extra zone records; MX mx1.dst.test → 127.0.0.2 etc. are built from `mx`. */
  readonly records?: readonly ZoneRecord[];
  /** domain → sink numbers (1-based) with preferences, e.g. { 'dst.test': [[10, 1], [20, 2]] }. */
  readonly mx?: Readonly<Record<string, readonly (readonly [number, number])[]>>;
  readonly servfail?: readonly string[];
  /** YAML added to the gateway config. */
  readonly yaml?: string;
  readonly random?: () => number;
}

export const DEFAULT_MESSAGE = 'From: Alice <a@src.test>\r\nTo: <b@dst.test>\r\nSubject: delivery test\r\nMessage-ID: <t1@src.test>\r\n\r\nHello.\r\n.dot line\r\n';

export async function startWorld(opts: WorldOptions): Promise<World> {
  const sinks = await startSinks(opts.sinks);
  const records: ZoneRecord[] = [...(opts.records ?? [])];
  sinks.forEach((s, i) => records.push({ name: `mx${i + 1}.dst.test`, type: 'A', value: s.host }));
  for (const [domain, mxs] of Object.entries(opts.mx ?? { 'dst.test': [[10, 1]] })) {
    for (const [priority, n] of mxs) records.push({ name: domain, type: 'MX', value: `mx${n}.dst.test`, priority });
  }
  const dns = await new LoopbackDnsServer({ records, servfail: opts.servfail ?? [] }).start();
  const clock = new ManualClock(T0);
  const port = sinks[0]?.port ?? 25;
  const yaml = [
    `dns: { servers: ["${dns.address}"], cache_ttl: 0 }`,
    opts.yaml?.includes('domains:') ? '' : 'domains: { local: [src.test] }',
    opts.yaml?.includes('delivery:') ? '' : `delivery: { smtp_port: ${port}, tls: none, connection_idle_time: 0, timeouts: { connect: 2s, greeting: 2s, helo: 2s, mail: 2s, rcpt: 2s, data_init: 2s, data_block: 2s, data_term: 2s, rset: 2s, quit: 1s } }`,
    opts.yaml ?? '',
  ].join('\n').replace(/\$PORT/g, String(port));
  let gw: TestGateway;
  try {
    gw = await startTestGateway(yaml, {
      policy: new AcceptAllPolicyEngine(),
      delivery: { clock, random: opts.random ?? (() => 0.5), worker: 'test-worker' },
    });
  } catch (err) {
    await Promise.all(sinks.map((s) => s.stop()));
    await dns.stop();
    throw err;
  }
  const scheduler = gw.gateway.delivery?.scheduler;
  if (!scheduler) throw new Error('delivery is not running');
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setImmediate(r));
      await scheduler.idle();
    }
  };
  return {
    gw, clock, dns, sinks,
    async send(to, o = {}) {
      return submit(gw.port, o.from ?? 'a@src.test', to, o.data ?? DEFAULT_MESSAGE, o.mailParams ?? '', o.rcptParams ?? []);
    },
    settle,
    async advance(ms) {
      clock.advance(ms);
      await settle();
    },
    message(id) {
      const m = gw.gateway.store.getMessage(id);
      if (!m) throw new Error(`no message ${id}`);
      return m;
    },
    maildir(address) {
      const at = address.lastIndexOf('@');
      const dir = join(gw.dir, 'mail', address.slice(at + 1).toLowerCase(), address.slice(0, at).toLowerCase(), 'new');
      if (!existsSync(dir)) return [];
      // Delivery order: the Q<n> counter of the Maildir unique names (seconds and microseconds sort badly as text).
      const order = (f: string): number => Number(/Q(\d+)\./.exec(f)?.[1] ?? 0);
      return readdirSync(dir).sort((a, b) => order(a) - order(b)).map((f) => readFileSync(join(dir, f)));
    },
    async stop() {
      await gw.stop();
      await Promise.all(sinks.map((s) => s.stop()));
      await dns.stop();
    },
  };
}

/** One message over SMTP, with ESMTP parameters; returns the queue id. */
export async function submit(port: number, from: string, to: readonly string[], data: string, mailParams = '', rcptParams: readonly string[] = []): Promise<string> {
  const c = await SmtpTestClient.connect(port);
  try {
    if ((await c.code()) !== '220') throw new Error('no greeting');
    const cmd = async (line: string): Promise<string> => {
      c.write(Buffer.from(`${line}\r\n`, 'utf8')); // UTF-8 addresses as they are (SMTPUTF8)
      return c.code();
    };
    await cmd('EHLO client.test');
    const mail = await cmd(`MAIL FROM:<${from}>${mailParams ? ` ${mailParams}` : ''}`);
    if (!mail.startsWith('250')) throw new Error(`MAIL: ${mail}`);
    for (const [i, t] of to.entries()) {
      const r = await cmd(`RCPT TO:<${t}>${rcptParams[i] ? ` ${rcptParams[i]}` : ''}`);
      if (!r.startsWith('25')) throw new Error(`RCPT: ${r}`);
    }
    if ((await c.cmd('DATA')) !== '354') throw new Error('DATA refused');
    c.write(Buffer.from(data.replace(/(^|\r\n)\./g, '$1..'), 'utf8'));
    c.write('.\r\n');
    const r = await c.reply();
    if (r.code !== 250) throw new Error(`end of data: ${r.raw}`);
    await c.cmd('QUIT');
    return /queued as (\S+)/.exec(r.lines[0])?.[1] ?? '';
  } finally {
    c.close();
  }
}

/** Runs `body` in a fresh world and always stops it. */
export async function withWorld(opts: WorldOptions, body: (w: World) => Promise<void>): Promise<void> {
  const w = await startWorld(opts);
  try {
    await body(w);
  } finally {
    await w.stop();
  }
}

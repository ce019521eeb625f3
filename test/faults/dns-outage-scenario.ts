/**
 * DNS goes away mid-run. Deliveries to dst.test need its MX (mx1.dst.test → 127.0.0.2, a
 * recording sink) from the loopback DNS server. While the load runs the DNS server is stopped
 * (its port closes: queries are refused): deliveries get soft bounces (deferred with 4.4.3, never
 * bounced, no DSN); then it is started again on the same port and everything is delivered.
 * Used by test/faults/dns-outage.test.ts and bench/faults/dns-outage.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway } from '../support/test-gateway.js';
import { LoopbackDnsServer, type ZoneData } from '../support/loopback-dns-server.js';
import {
  acceptedNumbers, accountFor, faultGatewayYaml, formatAccounting, loadMessage, queueSnapshot, RecordingSink, sleep, startLoad, until,
  type Accounting, type QueueSnapshot,
} from './fault-harness.js';

export interface DnsOutageOptions {
  readonly messages: number;
  readonly concurrency: number;
  /** Pause between a worker's messages, to spread the load over the outage. */
  readonly pauseMs: number;
  /** The DNS server goes away once this share of the messages is accepted… */
  readonly stopAt: number;
  /** …and stays away at least this long (and until `minDeferred` messages were deferred). */
  readonly outageMs: number;
  readonly minDeferred: number;
  readonly drainTimeoutMs: number;
}

export interface DnsOutageReport {
  readonly accounting: Accounting;
  readonly final: QueueSnapshot;
  /** Messages with at least one soft bounce (deferral) for DNS, and how those deferrals read. */
  readonly deferredMessages: number;
  readonly deferrals: Readonly<Record<string, number>>;
  /** Hard outcomes and DSNs while the DNS server was away: must both be 0. */
  readonly hardDuringOutage: number;
  readonly dsnsDuringOutage: number;
  readonly outageMs: number;
  readonly elapsedMs: number;
  summary(): string;
}

export async function runDnsOutage(o: DnsOutageOptions): Promise<DnsOutageReport> {
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'postern-fault-dns-'));
  const sink = await new RecordingSink().start('127.0.0.2');
  const zone: ZoneData = { records: [
    { name: 'dst.test', type: 'MX', value: 'mx1.dst.test', priority: 10, ttl: 1 },
    { name: 'mx1.dst.test', type: 'A', value: sink.sink.host, ttl: 1 },
  ] };
  let dns = await new LoopbackDnsServer(zone).start();
  const dnsPort = dns.port;
  const gw = await startTestGateway([
    `dns: { servers: ["${dns.address}"], cache_ttl: 0 }`,
    'timeouts: { dns: 1s }',
    faultGatewayYaml({ mxPort: sink.port, leaseTime: '5s' }),
  ].join('\n'), { delivery: true, dir });
  const rcpt = (n: number): string => `d${n}@dst.test`;
  const store = gw.gateway.store;
  try {
    const load = startLoad({
      target: async () => gw.port, count: o.messages, concurrency: o.concurrency, perConnection: 5, pauseMs: o.pauseMs,
      message: (n) => loadMessage(n, 'load@src.test', rcpt(n), 1024, 'dns'),
    });
    await until('the load to get going', () => load.count('accepted') >= o.messages * o.stopAt, o.drainTimeoutMs);
    // DNS goes away: the server stops and its port closes (queries are refused).
    const down = Date.now();
    await dns.stop();
    const deferredNow = (): number => store.searchMessages({ outcome: 'deferred', limit: 100_000 }).length;
    await sleep(o.outageMs);
    await until(`${o.minDeferred} messages deferred`, () => deferredNow() >= o.minDeferred, o.drainTimeoutMs);
    const during = queueSnapshot(join(dir, 'queue'), { integrity: false });
    const hardDuringOutage = [...during.recipients.values()].filter((s) => s === 'bounced' || s === 'expired').length;
    // DNS comes back on the same port.
    dns = await new LoopbackDnsServer(zone).start(dnsPort);
    const outageMs = Date.now() - down;
    await load.done;
    const accepted = acceptedNumbers(load.outcomes).map(rcpt);
    await until('every accepted message to be delivered', () => accepted.every((r) => sink.delivered.has(r)) && store.counts().queued === 0,
      o.drainTimeoutMs, () => `${accepted.filter((r) => !sink.delivered.has(r)).length} not delivered`);
    // How the deferrals read.
    const deferrals: Record<string, number> = {};
    let deferredMessages = 0;
    for (const [, out] of load.outcomes) {
      if (out.kind !== 'accepted') continue;
      const soft = store.messageEvents(out.queueId).filter((e) => e.kind === 'deferred');
      if (soft.length > 0) deferredMessages++;
      for (const e of soft) {
        const key = `${String(e.detail?.status)} ${(e.reply ?? '').slice(0, 60)}`;
        deferrals[key] = (deferrals[key] ?? 0) + 1;
      }
    }
    await gw.stop();
    const final = queueSnapshot(join(dir, 'queue'));
    const accounting = accountFor(load.outcomes, rcpt, sink.delivered, (r) => ['bounced', 'expired'].includes(final.recipients.get(r) ?? ''));
    const elapsedMs = Date.now() - t0;
    return {
      accounting, final, deferredMessages, deferrals, hardDuringOutage, dsnsDuringOutage: during.dsns, outageMs, elapsedMs,
      summary: () => [
        `messages=${o.messages} outage=${(outageMs / 1000).toFixed(1)}s elapsed=${(elapsedMs / 1000).toFixed(1)}s`,
        formatAccounting(accounting),
        `messages deferred=${deferredMessages}; hard outcomes during the outage=${hardDuringOutage}, DSNs=${during.dsns}`,
        `deferrals: ${Object.entries(deferrals).map(([k, v]) => `"${k}" ×${v}`).join(', ')}`,
        `queue at the end: ${JSON.stringify(final.states)} leased=${final.leased} dsns=${final.dsns} integrity=${final.integrity}`,
      ].join('\n'),
    };
  } finally {
    await gw.stop().catch(() => undefined);
    await dns.stop();
    await sink.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

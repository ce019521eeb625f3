/**
 * SIGKILL at random moments under load, repeated. `postern start` in a child process relays
 * dst.test to a recording sink on 127.0.0.2; a load generator sends messages with one unique
 * recipient each; at seeded random moments the gateway is SIGKILLed and restarted on the same
 * queue directory (its dead leases expire after `lease_time`), several times; then it may finish.
 * Used by test/faults/sigkill-load.test.ts (quick) and bench/faults/sigkill-load.ts (long).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTestConfig } from '../support/child-gateway.js';
import {
  acceptedNumbers, accountFor, faultGatewayYaml, formatAccounting, GatewayProcess, loadMessage, queueSnapshot, RecordingSink, seededRandom, sleep, startLoad, until,
  type Accounting, type QueueSnapshot,
} from './fault-harness.js';

export interface SigkillOptions {
  readonly seed: number;
  readonly messages: number;
  readonly rounds: number;
  readonly concurrency: number;
  /** Each kill comes this long (uniformly random within) after the gateway listens again. */
  readonly killAfterMs: readonly [number, number];
  readonly size?: number;
  /** delivery.lease_time of the gateway (short: a restarted single node waits for its dead leases). */
  readonly leaseTime?: string;
  /** How long the drain after the last restart may take. */
  readonly drainTimeoutMs: number;
  readonly log?: (line: string) => void;
}

export interface SigkillReport {
  readonly accounting: Accounting;
  readonly final: QueueSnapshot;
  readonly kills: number;
  /** Accepted before each kill (cumulative). */
  readonly acceptedAtKills: readonly number[];
  readonly startTimesMs: readonly number[];
  readonly exit: number | string | null;
  readonly elapsedMs: number;
  readonly drainMs: number;
  summary(): string;
}

export async function runSigkillLoad(o: SigkillOptions): Promise<SigkillReport> {
  const log = o.log ?? (() => undefined);
  const random = seededRandom(o.seed);
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'postern-fault-kill-'));
  const sink = await new RecordingSink().start();
  const gw = new GatewayProcess(writeTestConfig(dir, faultGatewayYaml({
    relayPort: sink.port, leaseTime: o.leaseTime ?? '2s', concurrency: 20, perDestination: 10, replyTimeout: '5s',
  })));
  const rcpt = (n: number): string => `r${n}@dst.test`;
  try {
    await gw.start();
    const load = startLoad({
      target: () => gw.port(), count: o.messages, concurrency: o.concurrency, perConnection: 5,
      message: (n) => loadMessage(n, 'load@src.test', rcpt(n), o.size ?? 1024, `kill${o.seed}`),
      replyTimeoutMs: 15_000,
    });
    const acceptedAtKills: number[] = [];
    for (let round = 0; round < o.rounds; round++) {
      const [lo, hi] = o.killAfterMs;
      await sleep(lo + random() * (hi - lo));
      await gw.kill();
      acceptedAtKills.push(load.count('accepted'));
      log(`kill ${round + 1}/${o.rounds}: accepted so far ${load.count('accepted')}, delivered so far ${sink.delivered.size}`);
      await gw.start();
    }
    await load.done;
    const accepted = acceptedNumbers(load.outcomes).map(rcpt);
    const tDrain = Date.now();
    // Let it finish: every accepted message delivered, and nothing left in the queue.
    await until('the queue to drain', () => {
      if (!accepted.every((r) => sink.delivered.has(r))) return false;
      const s = queueSnapshot(join(dir, 'queue'), { integrity: false });
      return (s.states.queued ?? 0) === 0 && s.leased === 0;
    }, o.drainTimeoutMs, () => `${accepted.filter((r) => !sink.delivered.has(r)).length} accepted not delivered yet`);
    const drainMs = Date.now() - tDrain;
    const exit = await gw.stop();
    const final = queueSnapshot(join(dir, 'queue'));
    const accounting = accountFor(load.outcomes, rcpt, sink.delivered, (r) => ['bounced', 'expired'].includes(final.recipients.get(r) ?? ''));
    const elapsedMs = Date.now() - t0;
    return {
      accounting, final, kills: gw.kills, acceptedAtKills, startTimesMs: gw.startTimes, exit, elapsedMs, drainMs,
      summary: () => [
        `seed=${o.seed} messages=${o.messages} concurrency=${o.concurrency} kills=${gw.kills} elapsed=${(elapsedMs / 1000).toFixed(1)}s drain=${(drainMs / 1000).toFixed(1)}s`,
        formatAccounting(accounting),
        `accepted at each kill: ${acceptedAtKills.join(', ')}; gateway start-up ms: ${gw.startTimes.join(', ')}; load reconnects: ${load.reconnects}`,
        `queue at the end: ${JSON.stringify(final.states)} leased=${final.leased} dsns=${final.dsns} integrity=${final.integrity} exit=${exit}`,
      ].join('\n'),
    };
  } finally {
    await gw.kill().catch(() => undefined);
    await sink.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The next hop flaps: a sink on 127.0.0.2 that, at seeded random, drops the connection at the
 * greeting or after the data, answers 421 at the greeting or at MAIL, or 451 after the data.
 * A gateway (in this process, real clock) relays dst.test to it with short retry intervals.
 * Everything must be delivered in the end, each retry no earlier than the time its soft bounce
 * scheduled (and that time the bounce profile's interval after the bounce), no lease left.
 * Used by test/faults/flapping-next-hop.test.ts and bench/faults/flapping-next-hop.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway } from '../support/test-gateway.js';
import { bounceProfileFromConfig } from '../../src/bounce/bounce-profile.js';
import { retryInterval } from '../../src/bounce/retry-schedule.js';
import {
  acceptedNumbers, accountFor, faultGatewayYaml, formatAccounting, loadMessage, queueSnapshot, RecordingSink, seededRandom, startLoad, until,
  type Accounting, type QueueSnapshot,
} from './fault-harness.js';

export interface FlappingOptions {
  readonly seed: number;
  readonly messages: number;
  readonly concurrency: number;
  /** Probability of each misbehaviour at its step (default 0.1). */
  readonly flapRate?: number;
  readonly drainTimeoutMs: number;
}

export interface RetryCheck {
  /** Retries checked (an attempt after a soft bounce). */
  readonly retries: number;
  /** Messages that needed more than one attempt. */
  readonly retried: number;
  readonly maxAttempts: number;
  /** Descriptions of retries that broke the schedule: must be empty. */
  readonly violations: readonly string[];
}

export interface FlappingReport {
  readonly accounting: Accounting;
  readonly final: QueueSnapshot;
  readonly retry: RetryCheck;
  /** Misbehaviours of the sink, by kind. */
  readonly flaps: Readonly<Record<string, number>>;
  readonly elapsedMs: number;
  summary(): string;
}

/** How late a retry may record its bounce after the attempt ended (the outcome transaction). */
const RECORDING_SLACK_MS = 1000;

export async function runFlappingNextHop(o: FlappingOptions): Promise<FlappingReport> {
  const t0 = Date.now();
  const random = seededRandom(o.seed);
  const p = o.flapRate ?? 0.1;
  const flaps: Record<string, number> = {};
  const flap = (kind: string): true => {
    flaps[kind] = (flaps[kind] ?? 0) + 1;
    return true;
  };
  const dir = mkdtempSync(join(tmpdir(), 'postern-fault-flap-'));
  const sink = await new RecordingSink({
    greeting: () => {
      const x = random();
      if (x < p && flap('drop at greeting')) return { drop: true };
      if (x < 2 * p && flap('421 at greeting')) return { reply: '421 4.3.2 flapping, come back later', close: true };
      return undefined;
    },
    mail: () => (random() < p && flap('421 at MAIL') ? { reply: '421 4.4.2 flapping', close: true } : undefined),
    endOfData: () => {
      const x = random();
      if (x < p && flap('drop after data')) return { drop: true };
      if (x < 1.5 * p && flap('451 after data')) return '451 4.3.0 flapping, try again';
      return undefined;
    },
  }).start();
  const gw = await startTestGateway(faultGatewayYaml({
    relayPort: sink.port, leaseTime: '5s', retry: { initial: '1s', factor: 1.5, max: '3s' },
  }), { delivery: true, dir });
  const rcpt = (n: number): string => `f${n}@dst.test`;
  try {
    const load = startLoad({
      target: async () => gw.port, count: o.messages, concurrency: o.concurrency, perConnection: 5,
      message: (n) => loadMessage(n, 'load@src.test', rcpt(n), 1024, `flap${o.seed}`),
    });
    await load.done;
    const accepted = acceptedNumbers(load.outcomes).map(rcpt);
    const store = gw.gateway.store;
    await until('every accepted message to be delivered and the queue empty', () =>
      accepted.every((r) => sink.delivered.has(r)) && store.counts().queued === 0,
    o.drainTimeoutMs, () => `${accepted.filter((r) => !sink.delivered.has(r)).length} not delivered, ${store.counts().queued} queued`);
    // The retry schedule, from the store's attempt records and the deferral events.
    const profile = bounceProfileFromConfig('default', gw.config.bounce_profiles.default);
    const violations: string[] = [];
    let retries = 0;
    let retried = 0;
    let maxAttempts = 0;
    for (const [, out] of load.outcomes) {
      if (out.kind !== 'accepted') continue;
      const id = out.queueId;
      const attempts = store.listAttempts(id);
      const deferred = store.messageEvents(id).filter((e) => e.kind === 'deferred');
      maxAttempts = Math.max(maxAttempts, attempts.length);
      if (attempts.length > 1) retried++;
      if (deferred.length !== attempts.length - 1) violations.push(`${id}: ${attempts.length} attempts but ${deferred.length} deferrals`);
      deferred.forEach((d, k) => {
        const next = Number(d.detail?.nextAttemptAt);
        const interval = retryInterval(profile, k + 1, () => 0.5);
        const scheduled = next - d.at;
        if (!(scheduled >= interval && scheduled <= interval + RECORDING_SLACK_MS)) {
          violations.push(`${id}: deferral ${k + 1} scheduled ${scheduled} ms after its attempt, the profile says ${interval} ms`);
        }
        const retry = attempts[k + 1];
        if (retry === undefined) return;
        retries++;
        if (retry.at < next) violations.push(`${id}: attempt ${k + 2} at ${retry.at}, ${next - retry.at} ms before its scheduled ${next}`);
      });
    }
    await gw.stop();
    const final = queueSnapshot(join(dir, 'queue'));
    const accounting = accountFor(load.outcomes, rcpt, sink.delivered, (r) => ['bounced', 'expired'].includes(final.recipients.get(r) ?? ''));
    const retry = { retries, retried, maxAttempts, violations };
    const elapsedMs = Date.now() - t0;
    return {
      accounting, final, retry, flaps, elapsedMs,
      summary: () => [
        `seed=${o.seed} messages=${o.messages} flap rate=${p} elapsed=${(elapsedMs / 1000).toFixed(1)}s sink connections=${sink.sink.connections}`,
        `flaps: ${Object.entries(flaps).map(([k, v]) => `${k} ×${v}`).join(', ')}`,
        formatAccounting(accounting),
        `retries checked=${retries} messages retried=${retried} most attempts=${maxAttempts} schedule violations=${violations.length}`,
        ...violations.slice(0, 10),
        `queue at the end: ${JSON.stringify(final.states)} leased=${final.leased} dsns=${final.dsns} integrity=${final.integrity}`,
      ].join('\n'),
    };
  } finally {
    await gw.stop().catch(() => undefined);
    await sink.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

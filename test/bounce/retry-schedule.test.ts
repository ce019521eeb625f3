/** Bounce profiles, the retry schedule (backoff, caps, jitter, both limits) and delay warnings. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BounceProfiles, type BounceProfile } from '../../src/bounce/bounce-profile.js';
import { nextRetry, retryInterval } from '../../src/bounce/retry-schedule.js';
import { delayWarningDue } from '../../src/bounce/delay-warning.js';
import { parseConfigText } from '../../src/config/load-config.js';

const H = 3_600_000;
const noJitter = (): number => 0.5;

function profiles(yaml: string): BounceProfiles {
  return new BounceProfiles(parseConfigText(yaml, 'test.yaml', { baseDir: '/tmp' }).bounce_profiles);
}

test('the default profile is what commercial gateways ship', () => {
  const p = profiles('').default;
  assert.deepEqual({ ...p }, {
    name: 'default', initialRetryMs: 60_000, backoffFactor: 2, maxRetryIntervalMs: H, maxRetries: 100,
    maxTimeInQueueMs: 72 * H, delayWarningMs: 4 * H, delayWarnings: 1, sendHardBounceDsn: true, sendDelayDsn: true, jitter: 0.1,
  });
});

test('per-domain profiles inherit from default; subdomains find their parent; case does not matter', () => {
  const p = profiles('bounce_profiles: { default: { initial_retry: 30s }, partner.test: { max_time_in_queue: 4h } }');
  assert.equal(p.default.initialRetryMs, 30_000);
  const partner = p.forDomain('Partner.TEST');
  assert.equal(partner.name, 'partner.test');
  assert.equal(partner.maxTimeInQueueMs, 4 * H);
  assert.equal(partner.initialRetryMs, 30_000, 'inherited from default');
  assert.equal(p.forDomain('mx.eu.partner.test').name, 'partner.test');
  assert.equal(p.forDomain('other.test').name, 'default');
  assert.throws(() => profiles('bounce_profiles: { "not a domain": {} }'), /bounce_profiles\["not a domain"\]: expected "default" or a destination domain/);
  assert.throws(() => profiles('bounce_profiles: { default: { backoff_factor: 0.5 } }'), /backoff_factor/);
  assert.throws(() => profiles('bounce_profiles: { default: { retry: 5m } }'), /unknown key/);
});

test('intervals: 60 s doubling up to 1 h', () => {
  const p = profiles('').default;
  const intervals = Array.from({ length: 10 }, (_, i) => retryInterval(p, i + 1, noJitter) / 1000);
  assert.deepEqual(intervals, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600]);
});

test('jitter stays within its fraction, both ways', () => {
  const p: BounceProfile = { ...profiles('').default, jitter: 0.1 };
  assert.equal(retryInterval(p, 1, () => 0), 54_000);
  assert.equal(retryInterval(p, 1, () => 0.999999), 66_000);
  const seen = new Set<number>();
  let seed = 1;
  const random = (): number => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  for (let i = 0; i < 200; i++) {
    const v = retryInterval(p, 3, random);
    assert.ok(v >= 216_000 && v <= 264_000, String(v));
    seen.add(v);
  }
  assert.ok(seen.size > 50, 'retries spread out');
});

test('soft turns hard at max_retries or max_time_in_queue, whichever comes first', () => {
  const t0 = 1_700_000_000_000;
  const few: BounceProfile = { ...profiles('').default, maxRetries: 3, jitter: 0 };
  assert.deepEqual(nextRetry(few, { attempts: 1, receivedAt: t0, now: t0 }, noJitter), { kind: 'retry', at: t0 + 60_000, interval: 60_000 });
  assert.deepEqual(nextRetry(few, { attempts: 3, receivedAt: t0, now: t0 + 180_000 }, noJitter), { kind: 'retry', at: t0 + 420_000, interval: 240_000 });
  assert.deepEqual(nextRetry(few, { attempts: 4, receivedAt: t0, now: t0 + 420_000 }, noJitter), { kind: 'expire', reason: 'max-retries' });

  const short: BounceProfile = { ...profiles('').default, maxTimeInQueueMs: 5 * 60_000, jitter: 0 };
  // The third retry would come after the limit: it is moved to the limit itself.
  assert.deepEqual(nextRetry(short, { attempts: 3, receivedAt: t0, now: t0 + 180_000 }, noJitter), { kind: 'retry', at: t0 + 300_000, interval: 120_000 });
  assert.deepEqual(nextRetry(short, { attempts: 4, receivedAt: t0, now: t0 + 300_000 }, noJitter), { kind: 'expire', reason: 'max-time-in-queue' });

  const zero: BounceProfile = { ...profiles('').default, maxRetries: 0 };
  assert.deepEqual(nextRetry(zero, { attempts: 1, receivedAt: t0, now: t0 }, noJitter), { kind: 'expire', reason: 'max-retries' });
});

test('delay warnings: after delay_warning, at most delay_warnings, one per period; off when send_delay_dsn is false', () => {
  const t0 = 1_700_000_000_000;
  const p = profiles('').default;
  assert.equal(delayWarningDue(p, { receivedAt: t0, now: t0 + 4 * H - 1, warningsSent: 0 }), false);
  assert.equal(delayWarningDue(p, { receivedAt: t0, now: t0 + 4 * H, warningsSent: 0 }), true);
  assert.equal(delayWarningDue(p, { receivedAt: t0, now: t0 + 20 * H, warningsSent: 1 }), false, 'once');
  const twice: BounceProfile = { ...p, delayWarnings: 2 };
  assert.equal(delayWarningDue(twice, { receivedAt: t0, now: t0 + 5 * H, warningsSent: 1 }), false);
  assert.equal(delayWarningDue(twice, { receivedAt: t0, now: t0 + 8 * H, warningsSent: 1 }), true);
  assert.equal(delayWarningDue({ ...p, sendDelayDsn: false }, { receivedAt: t0, now: t0 + 5 * H, warningsSent: 0 }), false);
});

/**
 * Retry timing and soft turned hard, with a moved clock (no sleeping): attempts at the profile's
 * intervals and not before, one delay DSN, the failure DSN (5.4.7, with the last reply) at the
 * limit — whichever of max_retries and max_time_in_queue comes first — and none of that for the
 * null sender.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startWorld, T0, type World } from './harness.js';
import { parseDsn } from '../bounce/parse-dsn.js';

const TIMEOUT = { timeout: 30_000 };
const S = 1000;

async function alwaysSoft(profile: string, body: (w: World, attempts: number[]) => Promise<void>): Promise<void> {
  const attempts: number[] = [];
  let w: World | null = null;
  w = await startWorld({
    sinks: [{ mail: () => { attempts.push((w as World).clock.now() - T0); return '451 4.3.0 Temporary local problem, try later'; } }],
    yaml: `bounce_profiles: { default: { ${profile} } }`,
  });
  try {
    await body(w, attempts);
  } finally {
    await w.stop();
  }
}

/** Moves the clock in steps and lets the queue settle after each. */
async function walk(w: World, untilMs: number, stepMs: number): Promise<void> {
  while (w.clock.now() - T0 < untilMs) await w.advance(Math.min(stepMs, untilMs - (w.clock.now() - T0)));
}

test('attempts at the profile\'s intervals; one delay DSN; at max_retries the failure DSN with 5.4.7 and the last reply', TIMEOUT, async () => {
  const profile = 'initial_retry: 60s, backoff_factor: 2, max_retry_interval: 10m, max_retries: 4, max_time_in_queue: 1h, delay_warning: 5m, delay_warnings: 1, jitter: 0';
  await alwaysSoft(profile, async (w, attempts) => {
    const id = await w.send(['b@dst.test'], { mailParams: 'RET=HDRS ENVID=RT-1' });
    await w.settle();
    assert.deepEqual(attempts, [0]);
    // Walk through time in 10-second steps: nothing happens between the due times.
    await walk(w, 899 * S, 10 * S);
    assert.deepEqual(attempts, [0, 60 * S, 180 * S, 420 * S], '60 s, then doubling: 2 min, 4 min');
    let m = w.message(id);
    assert.equal(m.state, 'queued');
    assert.equal(m.recipients[0].attempts, 4);
    assert.equal(m.recipients[0].nextAttemptAt, T0 + 900 * S);

    // The delay DSN came with the first soft bounce past 5 minutes (the attempt at 7 min), once.
    const delayed = w.maildir('a@src.test').map((b) => parseDsn(b));
    assert.equal(delayed.length, 1);
    assert.equal(delayed[0].headers.get('subject'), 'Delayed Mail (still being retried)');
    assert.equal(delayed[0].headers.get('date'), 'Sat, 28 Nov 2026 08:07:00 +0000');
    const dr = delayed[0].perRecipient[0];
    assert.equal(dr.get('action'), 'delayed');
    assert.equal(dr.get('status'), '4.3.0');
    assert.equal(dr.get('will-retry-until'), 'Sat, 28 Nov 2026 09:00:00 +0000');
    assert.equal(dr.get('diagnostic-code'), 'smtp; 451 4.3.0 Temporary local problem, try later');
    assert.equal(m.delayWarnings, 1);

    // The fifth attempt (the fourth retry) fails too: soft turned hard.
    await w.advance(1 * S);
    assert.deepEqual(attempts, [0, 60 * S, 180 * S, 420 * S, 900 * S]);
    m = w.message(id);
    assert.equal(m.state, 'done');
    assert.deepEqual([m.recipients[0].state, m.recipients[0].status], ['expired', '5.4.7']);
    assert.equal(m.recipients[0].lastReply, '451 4.3.0 Temporary local problem, try later');
    const history = w.gw.gateway.store.listAttempts(id);
    assert.deepEqual(history.map((a) => [a.at - T0, a.outcome]), [
      [0, 'soft'], [60 * S, 'soft'], [180 * S, 'soft'], [420 * S, 'soft'], [900 * S, 'soft'], [900 * S, 'expired'],
    ]);
    const all = w.maildir('a@src.test').map((b) => parseDsn(b));
    assert.equal(all.length, 2, 'one delay DSN, one failure DSN');
    const failed = all[1];
    assert.equal(failed.headers.get('subject'), 'Undelivered Mail Returned to Sender');
    assert.equal(failed.perMessage.get('original-envelope-id'), 'RT-1');
    assert.equal(failed.perMessage.get('arrival-date'), 'Sat, 28 Nov 2026 08:00:00 +0000');
    const fr = failed.perRecipient[0];
    assert.equal(fr.get('action'), 'failed');
    assert.equal(fr.get('status'), '5.4.7');
    assert.equal(fr.get('diagnostic-code'), 'smtp; 451 4.3.0 Temporary local problem, try later');
    assert.equal(fr.get('last-attempt-date'), 'Sat, 28 Nov 2026 08:15:00 +0000');
    assert.match(failed.parts[0].body.replace(/\r\n\s+/g, ' '), /gave up after 5 attempts/);
    assert.equal(failed.returned.headers.get('content-type'), 'text/rfc822-headers');

    // Nothing more happens, ever.
    await w.advance(24 * 3600 * S);
    assert.equal(attempts.length, 5);
    assert.equal(w.maildir('a@src.test').length, 2);
  });
});

test('max_time_in_queue before max_retries: one last try at the limit, then the failure DSN', TIMEOUT, async () => {
  const profile = 'initial_retry: 60s, backoff_factor: 2, max_retries: 100, max_time_in_queue: 5m, delay_warning: 1h, jitter: 0';
  await alwaysSoft(profile, async (w, attempts) => {
    const id = await w.send(['b@dst.test']);
    await w.settle();
    await walk(w, 600 * S, 15 * S);
    assert.deepEqual(attempts, [0, 60 * S, 180 * S, 300 * S], 'the retry due at 7 min is moved to the 5-minute limit');
    const m = w.message(id);
    assert.deepEqual([m.state, m.recipients[0].state, m.recipients[0].status], ['done', 'expired', '5.4.7']);
    const dsns = w.maildir('a@src.test').map((b) => parseDsn(b));
    assert.equal(dsns.length, 1, 'no delay warning (1 h), one failure DSN');
    assert.equal(dsns[0].perRecipient[0].get('status'), '5.4.7');
    assert.match(dsns[0].parts[0].body.replace(/\r\n\s+/g, ' '), /gave up after 5 min in queue/);
  });
});

test('the null sender: retried the same, expires the same, and never gets a DSN', TIMEOUT, async () => {
  const profile = 'initial_retry: 60s, backoff_factor: 2, max_retries: 2, delay_warning: 1m, jitter: 0';
  await alwaysSoft(profile, async (w, attempts) => {
    const id = await w.send(['b@dst.test'], { from: '' });
    await w.settle();
    await walk(w, 3600 * S, 30 * S);
    assert.deepEqual(attempts, [0, 60 * S, 180 * S]);
    assert.deepEqual([w.message(id).state, w.message(id).recipients[0].state], ['done', 'expired']);
    assert.equal(w.gw.gateway.store.listMessages().length, 1, 'no DSN was generated');
    assert.deepEqual(w.maildir('a@src.test'), []);
  });
});

test('per-domain profiles: each recipient keeps its own schedule; NOTIFY=NEVER silences the DSNs', TIMEOUT, async () => {
  const attempts: string[] = [];
  let w: World | null = null;
  w = await startWorld({
    sinks: [{ rcpt: (to) => { attempts.push(`${((w as World).clock.now() - T0) / S}s ${to}`); return '450 4.2.1 busy'; } }],
    mx: { 'dst.test': [[10, 1]], 'fast.test': [[10, 1]] },
    yaml: 'bounce_profiles: { default: { initial_retry: 10m, jitter: 0 }, fast.test: { initial_retry: 1m, max_retries: 1 } }',
  });
  try {
    const id = await w.send(['b@dst.test', 'c@fast.test'], { rcptParams: ['', 'NOTIFY=NEVER'] });
    await w.settle();
    await walk(w, 660 * S, 30 * S);
    assert.deepEqual(attempts, ['0s b@dst.test', '0s c@fast.test', '60s c@fast.test', '600s b@dst.test']);
    const m = w.message(id);
    assert.deepEqual(m.recipients.map((r) => r.state), ['queued', 'expired']);
    assert.deepEqual(w.maildir('a@src.test'), [], 'NOTIFY=NEVER: no failure DSN for c@fast.test');
  } finally {
    await w.stop();
  }
});

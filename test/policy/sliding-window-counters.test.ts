/** InProcessCounters: totals over a sliding window, exact at the limit, giving back, expiry, bounded keys. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InProcessCounters } from '../../src/policy/sliding-window-counters.js';

const HOUR = 3_600_000;
const T0 = Date.parse('2030-01-01T00:00:00Z');

test('hits add up within the window; 0 reads the total', async () => {
  const c = new InProcessCounters();
  assert.equal(await c.hit('k', HOUR, T0, 0), 0);
  assert.equal(await c.hit('k', HOUR, T0, 1), 1);
  assert.equal(await c.hit('k', HOUR, T0 + 1000, 1), 2);
  assert.equal(await c.hit('k', HOUR, T0 + 30 * 60_000, 3), 5);
  assert.equal(await c.hit('k', HOUR, T0 + 30 * 60_000, 0), 5);
  assert.equal(await c.hit('other', HOUR, T0, 0), 0, 'keys are apart');
  assert.equal(await c.hit('k', 60_000, T0, 0), 0, 'windows of another length are apart');
});

test('a hit leaves the window an hour later (to the minute), not before 59 minutes', async () => {
  const c = new InProcessCounters();
  await c.hit('k', HOUR, T0, 1);
  await c.hit('k', HOUR, T0 + 30 * 60_000, 1);
  assert.equal(await c.hit('k', HOUR, T0 + 59 * 60_000 - 1, 0), 2);
  assert.equal(await c.hit('k', HOUR, T0 + HOUR, 0), 1, 'the first is gone after an hour');
  assert.equal(await c.hit('k', HOUR, T0 + HOUR + 30 * 60_000, 0), 0, 'and the second half an hour later');
  assert.equal(c.size, 0, 'an empty window is dropped');
});

test('giving back: a negative amount undoes a hit; totals never go below 0', async () => {
  const c = new InProcessCounters();
  assert.equal(await c.hit('k', HOUR, T0, 1), 1);
  assert.equal(await c.hit('k', HOUR, T0, 1), 2);
  assert.equal(await c.hit('k', HOUR, T0, -1), 1);
  assert.equal(await c.hit('k', HOUR, T0, -5), 0);
});

test('a limit of N: the N+1st hit is over it, exactly', async () => {
  const c = new InProcessCounters();
  const N = 20;
  for (let i = 1; i <= N; i++) assert.equal(await c.hit('rcpt/ip/192.0.2.1', HOUR, T0 + i, 1), i);
  assert.ok((await c.hit('rcpt/ip/192.0.2.1', HOUR, T0 + N + 1, 1)) > N);
});

test('memory is bounded: past maxKeys the least recently used key is forgotten', async () => {
  const c = new InProcessCounters({ maxKeys: 3 });
  await c.hit('a', HOUR, T0, 1);
  await c.hit('b', HOUR, T0, 1);
  await c.hit('c', HOUR, T0, 1);
  await c.hit('a', HOUR, T0, 1); // a is the most recent now
  await c.hit('d', HOUR, T0, 1); // b goes
  assert.equal(c.size, 3);
  assert.equal(await c.hit('b', HOUR, T0, 0), 0);
  assert.equal(await c.hit('a', HOUR, T0, 0), 2);
});

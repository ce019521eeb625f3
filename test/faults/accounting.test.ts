/**
 * The fault tests' accounting can fail: a message that got 250 and arrived nowhere is lost;
 * one bounced in the store is not; no reply or a refusal is never lost; extra deliveries are
 * duplicates; a delivery nobody sent (or that was refused) is a phantom.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accountFor, type SendOutcome } from './fault-harness.js';

test('accounting: lost, bounced, duplicates, no reply, refused, phantoms', () => {
  const outcomes = new Map<number, SendOutcome>([
    [0, { kind: 'accepted', queueId: 'A' }], // delivered twice
    [1, { kind: 'accepted', queueId: 'B' }], // nowhere: lost
    [2, { kind: 'accepted', queueId: 'C' }], // bounced in the store
    [3, { kind: 'unknown', error: 'closed' }], // no reply, delivered all the same
    [4, { kind: 'unknown', error: 'closed' }], // no reply, not delivered: not lost
    [5, { kind: 'refused', stage: 'RCPT', reply: '550 5.7.1 blocked' }], // refused, yet delivered: phantom
  ]);
  const delivered = new Map([['r0@x.test', 2], ['r3@x.test', 1], ['r5@x.test', 1], ['r9@x.test', 1]]);
  const a = accountFor(outcomes, (n) => `r${n}@x.test`, delivered, (r) => r === 'r2@x.test');
  assert.deepEqual(a.lost, ['r1@x.test (queue id B)']);
  assert.equal(a.accepted, 3);
  assert.equal(a.delivered, 1);
  assert.equal(a.bounced, 1);
  assert.equal(a.duplicates, 1);
  assert.equal(a.unknown, 2);
  assert.equal(a.unknownDelivered, 1);
  assert.deepEqual([...a.phantoms].sort(), ['r5@x.test', 'r9@x.test']);
  assert.deepEqual(a.refusals, { 'RCPT 550 5.7.1': 1 });
});

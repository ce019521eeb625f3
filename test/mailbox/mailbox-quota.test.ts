/**
 * Quota: the maildirsize file (Maildir++ format), when it is recounted, check() at RCPT, and
 * delivery with the quota enforced — 50 deliveries at once with exact accounting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deliveryOutcome, MailboxDelivery } from '../../src/mailbox/mailbox-delivery.js';
import {
  countMaildir, MAILDIRSIZE, MAILDIRSIZE_MAX_BYTES, MailboxQuota, parseMaildirsize, peekUsage, type QuotaOwner,
} from '../../src/mailbox/mailbox-quota.js';
import { encodeReply } from '../../src/smtp/reply.js';
import { messageBytes } from './fixtures/message-bytes.js';

function tempRoot(): string {
  return mkdtempSync(join(tmpdir(), 'postern-quota-'));
}

const owner = (quota: number | null, localPart = 'alice'): QuotaOwner => ({ localPart, domain: 'example.test', maildir: null, quota });

const maildirsize = (maildir: string): string => readFileSync(join(maildir, MAILDIRSIZE), 'utf8');

/** The sum of the files in new/ and cur/, from their sizes on disk. */
function onDisk(maildir: string): { bytes: number; messages: number } {
  let bytes = 0;
  let messages = 0;
  for (const sub of ['new', 'cur']) {
    const dir = join(maildir, sub);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      bytes += statSync(join(dir, name)).size;
      messages += 1;
    }
  }
  return { bytes, messages };
}

test('maildirsize: the definition line, then one "<bytes> <count>" line per delivery', { timeout: 20_000 }, async () => {
  const root = tempRoot();
  try {
    const delivery = new MailboxDelivery({ root, hostname: 'h' });
    const user = owner(1_000_000);
    const maildir = delivery.maildirOf(user);
    assert.equal(maildir, join(root, 'example.test', 'alice'));

    const first = await delivery.deliver(user, messageBytes(1, 1234));
    assert.equal(first.status, 'delivered');
    // Created by a count when the first delivery checked the quota (empty then), then appended to.
    assert.equal(maildirsize(maildir), '1000000S\n0 0\n1234 1\n');
    await delivery.deliver(user, messageBytes(2, 766));
    assert.equal(maildirsize(maildir), '1000000S\n0 0\n1234 1\n766 1\n');
    assert.deepEqual(await delivery.quota.usage(user), { bytes: 2000, messages: 2 });
    assert.deepEqual(parseMaildirsize(maildirsize(maildir)), { quota: 1_000_000, usage: { bytes: 2000, messages: 2 } });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('check(): used + size > quota is over; without SIZE a full mailbox is over', { timeout: 20_000 }, async () => {
  const root = tempRoot();
  try {
    const delivery = new MailboxDelivery({ root, hostname: 'h' });
    const user = owner(10_000);
    await delivery.deliver(user, messageBytes(1, 6000));
    const quota = delivery.quota;
    assert.deepEqual(await quota.check(user, 4000), { status: 'ok', used: 6000, quota: 10_000, size: 4000 });
    assert.deepEqual(await quota.check(user, 4001), { status: 'over', used: 6000, quota: 10_000, size: 4001 });
    assert.equal((await quota.check(user, null)).status, 'ok');
    await delivery.deliver(user, messageBytes(2, 4000));
    assert.equal((await quota.check(user, null)).status, 'over', 'exactly at the quota: nothing more fits');
    assert.equal((await quota.check(user, 0)).status, 'over');
    // No quota: always ok, and nothing is read or written.
    const free = owner(null, 'bob');
    assert.deepEqual(await quota.check(free, 10 ** 12), { status: 'ok', used: 0, quota: null, size: 10 ** 12 });
    await delivery.deliver(free, Buffer.from('x'));
    assert.equal(existsSync(join(delivery.maildirOf(free), MAILDIRSIZE)), false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a check of a mailbox that never got mail: zero used, no directories created', { timeout: 20_000 }, async () => {
  const root = tempRoot();
  try {
    const quota = new MailboxQuota({ root });
    assert.deepEqual(await quota.check(owner(100), 50), { status: 'ok', used: 0, quota: 100, size: 50 });
    assert.equal(existsSync(join(root, 'example.test')), false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('at delivery: a message that does not fit is refused, nothing reaches new/ or stays in tmp/', { timeout: 20_000 }, async () => {
  const root = tempRoot();
  try {
    const delivery = new MailboxDelivery({ root, hostname: 'h' });
    const user = owner(5000);
    await delivery.deliver(user, messageBytes(1, 3000));
    const result = await delivery.deliver(user, messageBytes(2, 2001));
    assert.deepEqual(result, { status: 'over-quota', used: 3000, quota: 5000, size: 2001 });
    const maildir = delivery.maildirOf(user);
    assert.equal(readdirSync(join(maildir, 'new')).length, 1);
    assert.deepEqual(readdirSync(join(maildir, 'tmp')), []);
    assert.equal(maildirsize(maildir), '5000S\n0 0\n3000 1\n', 'a refused message is not counted');
    assert.equal((await delivery.deliver(user, messageBytes(3, 2000))).status, 'delivered', 'exactly up to the quota fits');

    // The outcome for the bounce machinery, both ways.
    const soft = deliveryOutcome(result, 'soft');
    assert.ok(soft.class === 'soft');
    assert.equal(soft.replyId, 'rcpt.over-quota-soft');
    assert.equal(encodeReply(soft.reply), '452 4.2.2 Recipient address rejected: Mailbox full\r\n');
    assert.equal(soft.detail, 'mailbox over quota: 3000 bytes used + 2001 bytes > 5000 bytes quota');
    const hard = deliveryOutcome(result, 'hard');
    assert.ok(hard.class === 'hard');
    assert.equal(hard.replyId, 'rcpt.over-quota-hard');
    assert.equal(encodeReply(hard.reply), '552 5.2.2 Recipient address rejected: Mailbox full\r\n');
    const ok = deliveryOutcome({ status: 'delivered', path: '/x', size: 1 }, 'hard');
    assert.deepEqual(ok, { class: 'delivered', path: '/x', size: 1 });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('50 concurrent deliveries to one mailbox: all arrive, accounting exact', { timeout: 60_000 }, async () => {
  const root = tempRoot();
  try {
    const delivery = new MailboxDelivery({ root, hostname: 'h' });
    const user = owner(1024 ** 3);
    const sizes = Array.from({ length: 50 }, (_, i) => 3000 + i * 17);
    const bodies = sizes.map((size, i) => messageBytes(i, size));
    // Bodies streamed in pieces with pauses, so the writes interleave.
    const results = await Promise.all(bodies.map((body) => delivery.deliver(user, (async function* () {
      for (let i = 0; i < body.length; i += 1000) {
        await new Promise((resolve) => setImmediate(resolve));
        yield body.subarray(i, i + 1000);
      }
    })())));
    assert.ok(results.every((r) => r.status === 'delivered'));
    const maildir = delivery.maildirOf(user);
    const total = sizes.reduce((a, b) => a + b, 0);
    assert.deepEqual(onDisk(maildir), { bytes: total, messages: 50 });
    const parsed = parseMaildirsize(maildirsize(maildir))!;
    assert.deepEqual(parsed.usage, { bytes: total, messages: 50 });
    assert.deepEqual(await countMaildir(maildir), { bytes: total, messages: 50 }, 'a recount agrees');
    const lines = maildirsize(maildir).trimEnd().split('\n');
    assert.ok(lines.length >= 2 && lines.slice(1).every((l) => /^\d+ \d+$/.test(l)), 'no torn lines');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('50 concurrent deliveries against a quota that fits 20: exactly 20 arrive, never over', { timeout: 60_000 }, async () => {
  const root = tempRoot();
  try {
    const delivery = new MailboxDelivery({ root, hostname: 'h' });
    const user = owner(20 * 5000 + 4999);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => delivery.deliver(user, messageBytes(i, 5000))));
    assert.equal(results.filter((r) => r.status === 'delivered').length, 20);
    assert.equal(results.filter((r) => r.status === 'over-quota').length, 30);
    const maildir = delivery.maildirOf(user);
    assert.deepEqual(onDisk(maildir), { bytes: 100_000, messages: 20 });
    assert.deepEqual(parseMaildirsize(maildirsize(maildir))!.usage, { bytes: 100_000, messages: 20 });
    assert.deepEqual(readdirSync(join(maildir, 'tmp')).filter((n) => !n.startsWith(MAILDIRSIZE)), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('recount: when maildirsize is missing, too big (> 5120 bytes), for another quota, or torn', { timeout: 20_000 }, async () => {
  const root = tempRoot();
  try {
    const delivery = new MailboxDelivery({ root, hostname: 'h' });
    const user = owner(1_000_000);
    for (let i = 0; i < 3; i++) await delivery.deliver(user, messageBytes(i, 1000 + i));
    const maildir = delivery.maildirOf(user);
    const exact = { bytes: 3003, messages: 3 };

    rmSync(join(maildir, MAILDIRSIZE));
    assert.deepEqual(await delivery.quota.usage(user), exact);
    assert.equal(maildirsize(maildir), '1000000S\n3003 3\n', 'missing: recounted and written');

    // Past 5120 bytes (lines that cancel out): recounted into two lines.
    appendFileSync(join(maildir, MAILDIRSIZE), '1 1\n-1 -1\n'.repeat(600));
    assert.ok(statSync(join(maildir, MAILDIRSIZE)).size > MAILDIRSIZE_MAX_BYTES);
    assert.deepEqual(await delivery.quota.usage(user), exact);
    assert.equal(maildirsize(maildir), '1000000S\n3003 3\n');

    // The quota changed: recounted with the new definition.
    assert.deepEqual(await delivery.quota.usage(owner(2_000_000)), exact);
    assert.equal(maildirsize(maildir), '2000000S\n3003 3\n');

    // Negative lines (an IMAP server expunged a message) count.
    appendFileSync(join(maildir, MAILDIRSIZE), '-1000 -1\n');
    assert.deepEqual(await delivery.quota.usage(owner(2_000_000)), { bytes: 2003, messages: 2 });

    // A torn last line (crash mid-append) is never appended to: record() recounts instead …
    rmSync(join(maildir, MAILDIRSIZE));
    await delivery.quota.usage(owner(2_000_000));
    writeFileSync(join(maildir, MAILDIRSIZE), '2000000S\n3003 3\n12');
    await delivery.quota.withMailboxLock(maildir, () => delivery.quota.record(maildir, 2_000_000, 12, 1));
    assert.equal(maildirsize(maildir), '2000000S\n3003 3\n');
    // … and the check before a delivery recounts it too.
    writeFileSync(join(maildir, MAILDIRSIZE), '2000000S\n3003 3\n12');
    await delivery.deliver(owner(2_000_000), messageBytes(9, 500));
    assert.equal(maildirsize(maildir), '2000000S\n3003 3\n500 1\n');

    // Garbage: recounted.
    writeFileSync(join(maildir, MAILDIRSIZE), 'what\x00ever\n');
    assert.deepEqual(await delivery.quota.usage(owner(2_000_000)), { bytes: 3503, messages: 4 });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('usage is not re-summed per check: maildirsize is trusted while it is fresh', { timeout: 20_000 }, async () => {
  const root = tempRoot();
  try {
    const delivery = new MailboxDelivery({ root, hostname: 'h' });
    const user = owner(1_000_000);
    await delivery.deliver(user, messageBytes(1, 1000));
    const maildir = delivery.maildirOf(user);
    // A file appears that maildirsize does not know about: checks go by maildirsize.
    writeFileSync(join(maildir, 'cur', '1.M1P1Q1.other,S=5000:2,S'), Buffer.alloc(5000));
    assert.equal((await delivery.quota.check(user, 0)).used, 1000);
    rmSync(join(maildir, MAILDIRSIZE));
    assert.equal((await delivery.quota.check(user, 0)).used, 6000, 'a recount sees it');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('an "over" answer from a maildirsize older than 15 minutes is double-checked by a recount', { timeout: 20_000 }, async () => {
  const root = tempRoot();
  try {
    const delivery = new MailboxDelivery({ root, hostname: 'h' });
    const user = owner(10_000);
    await delivery.deliver(user, messageBytes(1, 9000));
    const maildir = delivery.maildirOf(user);
    // A client that does not update maildirsize deleted the message.
    for (const name of readdirSync(join(maildir, 'new'))) rmSync(join(maildir, 'new', name));
    assert.equal((await delivery.quota.check(user, 2000)).status, 'over', 'fresh: trusted');
    const old = (Date.now() - 16 * 60_000) / 1000;
    utimesSync(join(maildir, MAILDIRSIZE), old, old);
    assert.deepEqual(await delivery.quota.check(user, 2000), { status: 'ok', used: 0, quota: 10_000, size: 2000 });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('recount: cur/ and new/ of the Maildir and its .Folders, sizes from ,S= or stat', { timeout: 20_000 }, async () => {
  const root = tempRoot();
  try {
    const maildir = join(root, 'm');
    for (const dir of ['new', 'cur', 'tmp', '.Sent/cur', '.Sent/new', '.Sent/tmp']) mkdirSync(join(maildir, dir), { recursive: true });
    writeFileSync(join(maildir, 'new', '1.M1P1Q1.h,S=100'), Buffer.alloc(100));
    writeFileSync(join(maildir, 'cur', '1.M1P1Q2.h:2,S'), Buffer.alloc(37)); // no S=: stat
    writeFileSync(join(maildir, '.Sent', 'cur', '1.M1P1Q3.h,S=50:2,S'), Buffer.alloc(50));
    writeFileSync(join(maildir, 'tmp', 'inflight'), Buffer.alloc(999)); // tmp/ never counts
    assert.deepEqual(await countMaildir(maildir), { bytes: 187, messages: 3 });
    assert.deepEqual(await peekUsage(maildir), { bytes: 187, messages: 3 });
    assert.equal(existsSync(join(maildir, MAILDIRSIZE)), false, 'peekUsage changes nothing');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('parseMaildirsize: the format of Courier and Dovecot', () => {
  assert.deepEqual(parseMaildirsize('1000S,10C\n   395    1\n  -20   -1\n'), { quota: 1000, usage: { bytes: 375, messages: 0 } });
  assert.deepEqual(parseMaildirsize('0S\n5 1\n'), { quota: null, usage: { bytes: 5, messages: 1 } });
  assert.equal(parseMaildirsize('1000S\n5 1\n\n6 1\n'), null, 'an empty line in the middle');
  assert.equal(parseMaildirsize('1000X\n'), null);
  assert.equal(parseMaildirsize('1000S\n5\n'), null);
});

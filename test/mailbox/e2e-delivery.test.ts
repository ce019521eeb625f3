/**
 * Local mailboxes at delivery, end to end: SMTP in over real sockets, the queue, delivery on a
 * test clock, and the Maildir read back byte-exact — Return-Path and Delivered-To on top of the
 * Received trace header added on receipt and the message as sent. The quota at delivery time
 * (soft: retried and delivered once there is room; hard: a DSN with 552 5.2.2, never a silent
 * drop), a forward (251) relayed to a sink on 127.0.0.2, an alias expanded to a local mailbox,
 * a remote address and an unknown one (each with its own outcome and DSN), a forwarding loop
 * through another system refused (5.4.6), and 50 deliveries at once into one mailbox with exact
 * quota accounting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDsn } from '../bounce/parse-dsn.js';
import { ehloed, receivedFor, send, startMailboxWorld, type MailboxWorld } from './fixtures/mailbox-world.js';

const USERS = `
users:
  - { address: sender@example.test, quota: none }
  - { address: alice@example.test, quota: 10KB }
  - { address: bob@example.test, quota: 2500 }
aliases:
  team@example.test: [alice@example.test, friend@partner.test, carol@example.test]
forwarding:
  moved@example.test: { mode: forward, to: alice@partner.test }
`;

/** A message as a client writes it (CRLF, a line that needs dot-stuffing), padded to `pad` body bytes. */
function message(subject: string, pad = 0): string {
  return [
    'From: Sender <sender@example.test>',
    'To: <alice@example.test>',
    `Subject: ${subject}`,
    `Message-ID: <${subject.replace(/\W/g, '')}@example.test>`,
    '',
    'Hello.',
    '.a line that starts with a dot',
    ...(pad > 0 ? ['x'.repeat(pad)] : []),
    '',
  ].join('\r\n');
}

async function withWorld(opts: Parameters<typeof startMailboxWorld>[0], fn: (w: MailboxWorld) => Promise<void>): Promise<void> {
  const world = await startMailboxWorld(opts);
  try {
    await fn(world);
  } finally {
    await world.stop();
  }
}

function tmpFiles(world: MailboxWorld, address: string): string[] {
  const [local, domain] = address.split('@');
  return readdirSync(join(world.mailRoot, domain, local, 'tmp')).filter((n) => !n.startsWith('maildirsize'));
}

test('a message for a local user lands in its Maildir byte-exact, trace header included; maildirsize counts it', { timeout: 30_000 }, async () => {
  await withWorld({ users: USERS }, async (world) => {
    const data = message('byte exact');
    const { rcpt, id } = await send(world.gw.port, { from: 'sender@example.test', to: ['alice@example.test'], data });
    assert.deepEqual(rcpt, ['250 2.1.5']);
    await world.settle();

    const files = world.maildir('alice@example.test');
    assert.equal(files.length, 1);
    const expected = Buffer.from(
      'Return-Path: <sender@example.test>\r\n'
      + 'Delivered-To: alice@example.test\r\n'
      + receivedFor(id, ['alice@example.test'])
      + data,
      'latin1',
    );
    assert.equal(files[0].data.toString('latin1'), expected.toString('latin1'));
    assert.ok(files[0].data.equals(expected));
    // Maildir name: <seconds>.M<usec>P<pid>Q<n>.<host>,S=<size> (the size Dovecot reads).
    assert.match(files[0].name, new RegExp(`^\\d+\\.M\\d+P${process.pid}Q\\d+\\.mx\\.test,S=${expected.length}$`));
    // A first recount (of an empty Maildir), then one line per delivery (Maildir++).
    assert.equal(world.maildirsize('alice@example.test'), `10240S\n0 0\n${expected.length} 1\n`);
    assert.deepEqual(tmpFiles(world, 'alice@example.test'), []);

    const m = world.message(id);
    assert.equal(m.state, 'done');
    assert.equal(m.recipients[0].state, 'delivered');
    assert.equal(m.recipients[0].status, '2.0.0');
  });
});

/** Sends two ~1.4 KB messages to bob (quota 2500): the first fits, the second is over at delivery. */
async function overQuotaAtDelivery(world: MailboxWorld): Promise<{ first: string; second: string; size: number }> {
  const first = await send(world.gw.port, { from: 'sender@example.test', to: ['bob@example.test'], data: message('first', 1200) });
  await world.settle();
  assert.equal(world.maildir('bob@example.test').length, 1);
  const size = world.maildir('bob@example.test')[0].data.length;
  // At RCPT there is still room (used + 1 byte <= quota); the real size does not fit.
  const second = await send(world.gw.port, { from: 'sender@example.test', to: ['bob@example.test'], data: message('second', 1200) });
  assert.deepEqual(second.rcpt, ['250 2.1.5']);
  await world.settle();
  return { first: first.id, second: second.id, size };
}

test('over quota at delivery, over_quota: soft — 452 4.2.2, kept and retried, delivered once there is room; no DSN', { timeout: 30_000 }, async () => {
  await withWorld({ users: USERS }, async (world) => {
    const { second, size } = await overQuotaAtDelivery(world);
    let m = world.message(second);
    assert.equal(m.state, 'queued');
    assert.equal(m.recipients[0].state, 'queued');
    assert.equal(m.recipients[0].status, '4.2.2');
    assert.match(m.recipients[0].lastReply ?? '', /^452 4\.2\.2 Recipient address rejected: Mailbox full \(mailbox over quota: \d+ bytes used \+ \d+ bytes > 2500 bytes quota\)$/);
    assert.equal(world.maildir('bob@example.test').length, 1, 'nothing more in new/');
    assert.deepEqual(tmpFiles(world, 'bob@example.test'), [], 'and nothing left in tmp/');
    assert.deepEqual(sumMaildirsize(world.maildirsize('bob@example.test')), { quota: 2500, bytes: size, count: 1 }, 'the refused message is not counted');
    assert.deepEqual(world.maildir('sender@example.test'), [], 'a soft bounce sends no DSN (before the delay warning)');

    // The user reads and deletes the first message; the IMAP server books it out of maildirsize.
    const bobNew = join(world.mailRoot, 'example.test', 'bob', 'new');
    unlinkSync(join(bobNew, readdirSync(bobNew)[0]));
    appendFileSync(join(world.mailRoot, 'example.test', 'bob', 'maildirsize'), `-${size} -1\n`);
    await world.advance(10 * 60_000);
    m = world.message(second);
    assert.equal(m.state, 'done');
    assert.equal(m.recipients[0].state, 'delivered');
    const files = world.maildir('bob@example.test');
    assert.equal(files.length, 1);
    assert.match(files[0].data.toString('latin1'), /^Return-Path: <sender@example\.test>\r\nDelivered-To: bob@example\.test\r\nReceived: [^]*Subject: second\r\n/);
  });
});

test('over quota at delivery, over_quota: hard — 552 5.2.2, bounced at once with a DSN to the sender', { timeout: 30_000 }, async () => {
  await withWorld({ users: USERS, overQuota: 'hard' }, async (world) => {
    const { second } = await overQuotaAtDelivery(world);
    const m = world.message(second);
    assert.equal(m.state, 'done');
    assert.equal(m.recipients[0].state, 'bounced');
    assert.equal(m.recipients[0].status, '5.2.2');
    assert.equal(world.maildir('bob@example.test').length, 1);
    const dsns = world.maildir('sender@example.test');
    assert.equal(dsns.length, 1, 'one DSN');
    assert.match(dsns[0].data.toString('latin1'), /^Return-Path: <>\r\nDelivered-To: sender@example\.test\r\n/);
    const dsn = parseDsn(dsns[0].data);
    const r = dsn.perRecipient[0];
    assert.equal(r.get('final-recipient'), 'rfc822; bob@example.test');
    assert.equal(r.get('action'), 'failed');
    assert.equal(r.get('status'), '5.2.2');
    assert.match(r.get('diagnostic-code') ?? '', /552 5\.2\.2 Recipient address rejected: Mailbox full/);
  });
});

test('a forward (251 2.1.5) is relayed by Postern to the new address, with the original as ORCPT', { timeout: 30_000 }, async () => {
  await withWorld({ users: USERS }, async (world) => {
    const data = message('forwarded');
    const { rcpt, id } = await send(world.gw.port, { from: 'sender@example.test', to: ['moved@example.test'], data });
    assert.deepEqual(rcpt, ['251 2.1.5']);
    await world.settle();
    const sink = world.sinks[0];
    assert.equal(sink.messages.length, 1);
    const got = sink.messages[0];
    assert.equal(got.from, 'sender@example.test');
    assert.deepEqual(got.accepted, ['alice@partner.test']);
    assert.match(got.rcpts[0].params, /ORCPT=rfc822;moved@example\.test/i);
    assert.equal(got.body.toString('latin1'), `Delivered-To: moved@example.test\r\n${receivedFor(id, ['moved@example.test'])}${data}`);

    const m = world.message(id);
    assert.equal(m.recipients[0].state, 'delivered');
    assert.equal(m.recipients[0].lastReply, 'forwarded: alice@partner.test');
    const copy = world.gw.gateway.store.listMessages().find((q) => q.envelope.sessionId === `fwd-${id}`);
    assert.ok(copy, 'the forwarded copy is a message of its own');
    assert.equal(copy.state, 'done');
    assert.equal(copy.envelope.sender, 'sender@example.test');
    assert.equal(copy.envelope.client.listener, 'postern-forward');
    assert.deepEqual(world.maildir('sender@example.test'), [], 'no DSN: everything arrived');
  });
});

test('an alias expands to a mailbox, a remote address and an unknown one: each gets its own outcome and DSN', { timeout: 30_000 }, async () => {
  await withWorld({ users: USERS }, async (world) => {
    const data = message('to the team');
    const c = await send(world.gw.port, {
      from: 'sender@example.test', to: ['team@example.test'], data, mailParams: 'RET=HDRS',
    });
    assert.deepEqual(c.rcpt, ['250 2.1.5']);
    await world.settle();

    const alice = world.maildir('alice@example.test');
    assert.equal(alice.length, 1);
    assert.equal(
      alice[0].data.toString('latin1'),
      `Return-Path: <sender@example.test>\r\nDelivered-To: alice@example.test\r\nDelivered-To: team@example.test\r\n${receivedFor(c.id, ['team@example.test'])}${data}`,
    );
    assert.deepEqual(world.sinks[0].delivered(), ['friend@partner.test']);

    // carol@example.test does not exist: a hard bounce of its own, to the sender.
    const dsns = world.maildir('sender@example.test');
    assert.equal(dsns.length, 1);
    const r = parseDsn(dsns[0].data).perRecipient[0];
    assert.equal(r.get('final-recipient'), 'rfc822; carol@example.test');
    assert.equal(r.get('original-recipient'), 'rfc822; team@example.test');
    assert.equal(r.get('action'), 'failed');
    assert.equal(r.get('status'), '5.1.1');
    assert.equal(world.message(c.id).recipients[0].state, 'delivered');
    assert.equal(world.message(c.id).recipients[0].lastReply, 'alias expanded to 3 addresses: alice@example.test, friend@partner.test, carol@example.test');
  });
});

test('NOTIFY=SUCCESS on an alias: an "expanded" DSN at once, and none from the targets', { timeout: 30_000 }, async () => {
  const users = USERS.replace('[alice@example.test, friend@partner.test, carol@example.test]', '[alice@example.test, friend@partner.test]');
  await withWorld({ users }, async (world) => {
    await sendWithRcptParams(world, 'team@example.test', 'NOTIFY=SUCCESS,FAILURE');
    await world.settle();
    assert.equal(world.maildir('alice@example.test').length, 1);
    assert.deepEqual(world.sinks[0].delivered(), ['friend@partner.test']);
    assert.match(world.sinks[0].messages[0].rcpts[0].params, /NOTIFY=FAILURE(?![,A-Z])/, 'SUCCESS is not passed on');
    const dsns = world.maildir('sender@example.test');
    assert.equal(dsns.length, 1);
    const r = parseDsn(dsns[0].data).perRecipient[0];
    assert.equal(r.get('final-recipient'), 'rfc822; team@example.test');
    assert.equal(r.get('action'), 'expanded');
    assert.equal(r.get('status'), '2.0.0');
  });
});

async function sendWithRcptParams(world: MailboxWorld, to: string, params: string): Promise<string> {
  const c = await ehloed(world.gw.port);
  try {
    assert.equal(await c.cmd('MAIL FROM:<sender@example.test>'), '250 2.1.0');
    assert.equal(await c.cmd(`RCPT TO:<${to}> ${params}`), '250 2.1.5');
    assert.equal(await c.cmd('DATA'), '354');
    c.write(message('with params'));
    c.write('.\r\n');
    const r = await c.reply();
    assert.equal(r.code, 250);
    return /queued as (\S+)/.exec(r.lines[0])?.[1] ?? '';
  } finally {
    c.close();
  }
}

test('a forward that comes back (Delivered-To already names it) is a loop: 5.4.6, a DSN, nothing relayed', { timeout: 30_000 }, async () => {
  await withWorld({ users: USERS }, async (world) => {
    const data = `Delivered-To: moved@example.test\r\n${message('came back')}`;
    const { id } = await send(world.gw.port, { from: 'sender@example.test', to: ['moved@example.test'], data });
    await world.settle();
    assert.equal(world.sinks[0].messages.length, 0);
    const m = world.message(id);
    assert.equal(m.recipients[0].state, 'bounced');
    assert.equal(m.recipients[0].status, '5.4.6');
    const dsns = world.maildir('sender@example.test');
    assert.equal(dsns.length, 1);
    assert.equal(parseDsn(dsns[0].data).perRecipient[0].get('status'), '5.4.6');
  });
});

test('50 deliveries at once into one mailbox: all arrive whole, and maildirsize accounts for each byte', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-mbx50-'));
  try {
    const users = 'users:\n  - { address: many@example.test, quota: 1MB }\n  - { address: tight@example.test, quota: QUOTA }\n';
    // Received while delivery is off, so all 50 are due together when it starts.
    const bodies = Array.from({ length: 50 }, (_, i) => message(`message ${String(i).padStart(2, '0')}`, 500));
    const receiver = await startMailboxWorld({ users: users.replace('QUOTA', '1MB'), dir, delivery: false });
    let ids: string[];
    let tightSize: number;
    try {
      ids = (await Promise.all(bodies.map((data) => send(receiver.gw.port, { from: 'sender@example.test', to: ['many@example.test'], data })))).map((r) => r.id);
      // And 50 to a mailbox with room for exactly 30 of them.
      const tight = await Promise.all(bodies.map((data) => send(receiver.gw.port, { from: 'sender@example.test', to: ['tight@example.test'], data })));
      assert.ok(tight.every((t) => t.rcpt[0] === '250 2.1.5'));
      tightSize = receiver.gw.gateway.store.getMessage(tight[0].id)!.size + 'Return-Path: <sender@example.test>\r\nDelivered-To: tight@example.test\r\n'.length;
    } finally {
      await receiver.stop();
    }
    const world = await startMailboxWorld({ users: users.replace('QUOTA', String(30 * tightSize)), dir, concurrency: 100 });
    try {
      // All 100 are due at once: the scheduler takes them together (the deliveries overlap).
      const scheduler = world.gw.gateway.delivery!.scheduler;
      let most = scheduler.inFlightCount;
      const sample = setInterval(() => {
        most = Math.max(most, scheduler.inFlightCount);
      }, 1);
      await world.settle();
      clearInterval(sample);
      assert.ok(most >= 50, `deliveries in flight at once: ${most}`);
      const files = world.maildir('many@example.test');
      assert.equal(files.length, 50);
      const texts = files.map((f) => f.data.toString('latin1'));
      for (const [i, data] of bodies.entries()) {
        const found = texts.filter((t) => t.endsWith(data));
        assert.equal(found.length, 1, `message ${i} exactly once`);
      }
      for (const f of files) assert.equal(Number(/,S=(\d+)$/.exec(f.name)?.[1]), f.data.length, 'S= is the size');
      const total = files.reduce((n, f) => n + f.data.length, 0);
      assert.deepEqual(sumMaildirsize(world.maildirsize('many@example.test')), { quota: 1024 ** 2, bytes: total, count: 50 });
      for (const id of ids) assert.equal(world.message(id).state, 'done');

      // The tight mailbox: exactly 30 fit, 20 wait with 452 4.2.2 — the quota is never overshot.
      const tight = world.maildir('tight@example.test');
      assert.equal(tight.length, 30);
      assert.ok(tight.every((f) => f.data.length === tightSize));
      assert.deepEqual(sumMaildirsize(world.maildirsize('tight@example.test')), { quota: 30 * tightSize, bytes: 30 * tightSize, count: 30 });
      const waiting = world.gw.gateway.store.listMessages({ state: 'queued' });
      assert.equal(waiting.length, 20);
      assert.ok(waiting.every((m) => m.recipients[0].status === '4.2.2'));
      assert.deepEqual(tmpFiles(world, 'tight@example.test'), []);
    } finally {
      await world.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A maildirsize file summed up: its quota definition and the sum of its lines. */
function sumMaildirsize(text: string | null): { quota: number; bytes: number; count: number } {
  assert.ok(text !== null, 'maildirsize exists');
  const [definition, ...lines] = text.trimEnd().split('\n');
  let bytes = 0;
  let count = 0;
  for (const line of lines) {
    const [b, c] = line.trim().split(/\s+/).map(Number);
    bytes += b;
    count += c;
  }
  return { quota: Number(/^(\d+)S$/.exec(definition)?.[1]), bytes, count };
}

test('the users file decides again at delivery: disabled 5.2.1 and refer 5.1.6 and unknown 5.1.1 bounce, locked 4.2.1 and a loop 4.3.0 wait', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-mbx-later-'));
  try {
    const before = 'users:\n  - { address: sender@example.test }\n' + ['u1', 'u2', 'u3', 'u4', 'u5'].map((u) => `  - { address: ${u}@example.test }\n`).join('');
    const receiver = await startMailboxWorld({ users: before, dir, delivery: false });
    const ids: Record<string, string> = {};
    try {
      for (const u of ['u1', 'u2', 'u3', 'u4', 'u5']) {
        const r = await send(receiver.gw.port, { from: 'sender@example.test', to: [`${u}@example.test`], data: message(`to ${u}`) });
        assert.deepEqual(r.rcpt, ['250 2.1.5']);
        ids[u] = r.id;
      }
    } finally {
      await receiver.stop();
    }
    // Changed while the messages waited in the queue.
    const after = [
      'users:',
      '  - { address: sender@example.test }',
      '  - { address: u1@example.test, status: disabled }',
      '  - { address: u2@example.test, status: locked }',
      'forwarding:',
      '  u3@example.test: { mode: refer, to: u3@elsewhere.test }',
      'aliases:',
      '  u5@example.test: [ring@example.test]',
      '  ring@example.test: [u5@example.test]',
      '',
    ].join('\n');
    const world = await startMailboxWorld({ users: after, dir });
    try {
      await world.settle();
      const outcome = (u: string): string => {
        const r = world.message(ids[u]).recipients[0];
        return `${r.state} ${r.status} ${r.lastReply}`;
      };
      assert.equal(outcome('u1'), 'bounced 5.2.1 550 5.2.1 Recipient address rejected: Mailbox disabled');
      assert.equal(outcome('u2'), 'queued 4.2.1 450 4.2.1 Recipient address rejected: Mailbox temporarily unavailable');
      assert.equal(outcome('u3'), 'bounced 5.1.6 551 5.1.6 User not local; please try <u3@elsewhere.test>');
      assert.equal(outcome('u4'), 'bounced 5.1.1 550 5.1.1 Recipient address rejected: User unknown (no mailbox u4@example.test)');
      assert.equal(outcome('u5'), 'queued 4.3.0 451 4.3.0 Local error in processing, try again later (alias or forwarding loop in the users file: u5@example.test → ring@example.test → u5@example.test)');
      const statuses = world.maildir('sender@example.test').map((f) => parseDsn(f.data).perRecipient[0].get('status')).sort();
      assert.deepEqual(statuses, ['5.1.1', '5.1.6', '5.2.1'], 'a DSN for each hard bounce');
      for (const u of ['u1', 'u2', 'u3', 'u4', 'u5']) assert.deepEqual(world.maildir(`${u}@example.test`), []);
    } finally {
      await world.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

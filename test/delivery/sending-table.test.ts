/**
 * The "Sending" table of reply-codes.md, row by row, over real sockets: a real gateway receives
 * a message and delivers it to sink listeners on 127.0.0.2, 127.0.0.3, … found through MX
 * records on a loopback DNS server. Bounces are read back from the sender's Maildir and parsed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withWorld, DEFAULT_MESSAGE, T0, type World } from './harness.js';
import { parseDsn, type ParsedDsn } from '../bounce/parse-dsn.js';

const TIMEOUT = { timeout: 30_000 };

/** The DSNs in a@src.test's Maildir. */
function dsns(w: World, address = 'a@src.test'): ParsedDsn[] {
  return w.maildir(address).map((m) => parseDsn(m));
}

function only<T>(list: readonly T[], what: string): T {
  assert.equal(list.length, 1, `exactly one ${what}, got ${list.length}`);
  return list[0];
}

test('2xx to the end of data: delivered, byte-exact (dot-unstuffed, trace header first), message done', TIMEOUT, async () => {
  await withWorld({ sinks: [{}] }, async (w) => {
    const id = await w.send(['b@dst.test', 'c@dst.test']);
    await w.settle();
    const msg = only(w.sinks[0].messages, 'message at the sink');
    assert.deepEqual(msg.accepted, ['b@dst.test', 'c@dst.test']);
    assert.equal(msg.from, 'a@src.test');
    assert.match(msg.mailParams, /^SIZE=\d+$/, 'SIZE goes with MAIL when offered');
    const text = msg.body.toString('utf8');
    assert.match(text, /^Received: from client\.test/);
    assert.ok(text.endsWith(DEFAULT_MESSAGE), 'the body arrives as it was received');
    const m = w.message(id);
    assert.equal(m.state, 'done');
    assert.deepEqual(m.recipients.map((r) => [r.state, r.status, r.lastReply]), [
      ['delivered', '2.0.0', '250 2.0.0 Ok: queued'], ['delivered', '2.0.0', '250 2.0.0 Ok: queued'],
    ]);
    const attempts = w.gw.gateway.store.listAttempts(id);
    assert.equal(attempts.length, 1);
    assert.deepEqual(attempts[0].recipients, [0, 1]);
    assert.equal(attempts[0].outcome, 'delivered');
    assert.match(attempts[0].nextHop ?? '', /^smtp:mx1\.dst\.test\[127\.0\.0\.2\]:\d+$/);
    assert.equal(attempts[0].at, T0);
    assert.deepEqual(dsns(w), [], 'no DSN without NOTIFY=SUCCESS');
  });
});

test('any 4xx (450 to RCPT): soft — stays queued, retried after the profile\'s interval, no DSN yet', TIMEOUT, async () => {
  let busy = true;
  await withWorld({ sinks: [{ rcpt: () => (busy ? '450 4.2.1 Mailbox busy' : undefined) }] }, async (w) => {
    const id = await w.send(['b@dst.test']);
    await w.settle();
    let m = w.message(id);
    assert.equal(m.state, 'queued');
    assert.deepEqual([m.recipients[0].state, m.recipients[0].status, m.recipients[0].lastReply], ['queued', '4.2.1', '450 4.2.1 Mailbox busy']);
    assert.equal(m.recipients[0].nextAttemptAt, T0 + 60_000);
    assert.equal(m.nextAttemptAt, T0 + 60_000);
    assert.equal(w.gw.gateway.store.listAttempts(id)[0].outcome, 'soft');
    assert.deepEqual(dsns(w), []);
    busy = false;
    await w.advance(59_999);
    assert.equal(w.sinks[0].connections, 1, 'not before the interval');
    await w.advance(1);
    m = w.message(id);
    assert.equal(m.state, 'done');
    assert.equal(m.recipients[0].attempts, 2);
    assert.deepEqual(w.sinks[0].delivered(), ['b@dst.test']);
  });
});

test('421 in the middle of the transaction: every unfinished recipient is soft', TIMEOUT, async () => {
  await withWorld({ sinks: [{ rcpt: (_to, n) => (n === 1 ? { reply: '421 4.3.2 Service shutting down', close: true } : undefined) }] }, async (w) => {
    const id = await w.send(['b@dst.test', 'c@dst.test', 'd@dst.test']);
    await w.settle();
    const m = w.message(id);
    assert.deepEqual(m.recipients.map((r) => [r.state, r.status]), [['queued', '4.3.2'], ['queued', '4.3.2'], ['queued', '4.3.2']]);
    assert.match(m.recipients[0].lastReply ?? '', /^421 4\.3\.2/);
    assert.equal(w.sinks[0].messages.length, 0);
  });
});

test('connection refused, then the next MX: soft on one host, delivered by the next', TIMEOUT, async () => {
  await withWorld({
    sinks: [{}],
    mx: { 'dst.test': [[10, 9], [20, 1]] },
    records: [{ name: 'mx9.dst.test', type: 'A', value: '127.0.0.99' }],
  }, async (w) => {
    const id = await w.send(['b@dst.test']);
    await w.settle();
    assert.equal(w.message(id).state, 'done');
    assert.deepEqual(w.sinks[0].delivered(), ['b@dst.test']);
    const attempts = w.gw.gateway.store.listAttempts(id);
    assert.deepEqual(attempts.map((a) => a.outcome), ['soft', 'delivered']);
    assert.match(attempts[0].reply, /connect to mx9\.dst\.test\[127\.0\.0\.99\]:\d+: Connection refused/);
  });
});

test('connection refused on the only MX: soft 4.4.1', TIMEOUT, async () => {
  await withWorld({ sinks: [{}], mx: { 'dst.test': [[10, 9]] }, records: [{ name: 'mx9.dst.test', type: 'A', value: '127.0.0.99' }] }, async (w) => {
    const id = await w.send(['b@dst.test']);
    await w.settle();
    const r = w.message(id).recipients[0];
    assert.deepEqual([r.state, r.status], ['queued', '4.4.1']);
  });
});

test('the peer drops the connection (after MAIL): soft, lost connection', TIMEOUT, async () => {
  await withWorld({ sinks: [{ mail: () => ({ drop: true }) }] }, async (w) => {
    const id = await w.send(['b@dst.test']);
    await w.settle();
    const r = w.message(id).recipients[0];
    assert.deepEqual([r.state, r.status], ['queued', '4.4.2']);
    assert.match(r.lastReply ?? '', /lost connection/);
  });
});

test('the peer never answers: the RFC 5321 timeout (here shortened) makes it soft', TIMEOUT, async () => {
  const yaml = 'delivery: { smtp_port: $PORT, tls: none, timeouts: { greeting: 300ms, data_term: 300ms } }';
  await withWorld({ sinks: [{ greeting: { silent: true } }, { endOfData: () => ({ silent: true }) }], mx: { 'dst.test': [[10, 1]], 'slow.test': [[10, 2]] }, yaml }, async (w) => {
    const started = Date.now();
    const id = await w.send(['b@dst.test', 'x@slow.test']);
    await w.settle();
    assert.ok(Date.now() - started < 5000);
    const m = w.message(id);
    assert.deepEqual(m.recipients.map((r) => [r.state, r.status]), [['queued', '4.4.2'], ['queued', '4.4.2']]);
    assert.match(m.recipients[0].lastReply ?? '', /timed out while sending the initial greeting/);
    assert.match(m.recipients[1].lastReply ?? '', /timed out while sending end of DATA/);
  });
});

test('TLS required but not offered: soft 4.7.4; opportunistic STARTTLS is used when offered', TIMEOUT, async () => {
  const { makeTestCertificate } = await import('../support/test-certificate.js');
  const { readFileSync, rmSync } = await import('node:fs');
  const cert = makeTestCertificate('mx2.dst.test');
  try {
    const tlsPair = { cert: readFileSync(cert.cert), key: readFileSync(cert.key) };
    const yaml = [
      'delivery: { smtp_port: $PORT, tls: opportunistic, connection_idle_time: 0 }',
      'domains: { local: [src.test], relay: { "strict.test": { next_hop: "smtp://127.0.0.2:$PORT", tls: required } } }',
    ].join('\n');
    await withWorld({ sinks: [{}, { tls: tlsPair }], mx: { 'dst.test': [[10, 2]] }, yaml }, async (w) => {
      const id = await w.send(['b@strict.test', 'c@dst.test']);
      await w.settle();
      const m = w.message(id);
      assert.deepEqual([m.recipients[0].state, m.recipients[0].status], ['queued', '4.7.4']);
      assert.match(m.recipients[0].lastReply ?? '', /TLS is required, but was not offered/);
      assert.equal(m.recipients[1].state, 'delivered');
      assert.equal(only(w.sinks[1].messages, 'message').tls, true, 'delivered over STARTTLS');
      assert.deepEqual(w.sinks[1].sessions[0].slice(0, 3), ['EHLO mx.test', 'STARTTLS', 'EHLO mx.test']);
    });
  } finally {
    rmSync(cert.dir, { recursive: true, force: true });
  }
});

test('opportunistic TLS whose handshake fails: tried again without TLS, and delivered', TIMEOUT, async () => {
  const yaml = 'delivery: { smtp_port: $PORT, tls: opportunistic, connection_idle_time: 0 }';
  await withWorld({ sinks: [{ tlsBroken: true }], yaml }, async (w) => {
    const id = await w.send(['b@dst.test']);
    await w.settle();
    assert.equal(w.message(id).recipients[0].state, 'delivered');
    assert.equal(w.sinks[0].connections, 2);
    assert.deepEqual(w.sinks[0].sessions[0], ['EHLO mx.test', 'STARTTLS']);
    assert.equal(w.sinks[0].sessions[1][0], 'EHLO mx.test');
    assert.ok(!w.sinks[0].sessions[1].includes('STARTTLS'), 'the second connection stays in plaintext');
    assert.equal(only(w.sinks[0].messages, 'message').tls, false);
  });
});

test('DNS SERVFAIL: soft 4.4.3, nothing sent', TIMEOUT, async () => {
  await withWorld({ sinks: [{}], servfail: ['broken.test'] }, async (w) => {
    const id = await w.send(['b@broken.test']);
    await w.settle();
    const r = w.message(id).recipients[0];
    assert.deepEqual([r.state, r.status], ['queued', '4.4.3']);
    assert.equal(w.gw.gateway.store.listAttempts(id)[0].nextHop, 'dns');
  });
});

test('552 to RCPT: soft (RFC 5321 §4.5.3.1.10)', TIMEOUT, async () => {
  await withWorld({ sinks: [{ rcpt: () => '552 5.2.2 Mailbox full' }] }, async (w) => {
    const id = await w.send(['b@dst.test']);
    await w.settle();
    const r = w.message(id).recipients[0];
    assert.deepEqual([r.state, r.status], ['queued', '4.2.2']);
    assert.deepEqual(dsns(w), []);
  });
});

test('452 after 2 recipients: the rest go in new transactions at once, on the same connection', TIMEOUT, async () => {
  await withWorld({ sinks: [{ rcpt: (_to, n) => (n >= 2 ? '452 4.5.3 Too many recipients' : undefined) }] }, async (w) => {
    const to = ['r1@dst.test', 'r2@dst.test', 'r3@dst.test', 'r4@dst.test', 'r5@dst.test'];
    const id = await w.send(to);
    await w.settle();
    assert.equal(w.message(id).state, 'done');
    assert.deepEqual(w.sinks[0].messages.map((m) => m.accepted), [['r1@dst.test', 'r2@dst.test'], ['r3@dst.test', 'r4@dst.test'], ['r5@dst.test']]);
    assert.equal(w.sinks[0].connections, 1);
    assert.deepEqual(w.gw.gateway.store.listAttempts(id).map((a) => [a.outcome, a.recipients]), [
      ['delivered', [0, 1]], ['retry-now', [2, 3, 4]], ['delivered', [2, 3]], ['retry-now', [4]], ['delivered', [4]],
    ]);
    assert.equal(w.clock.now(), T0, 'no retry interval was waited for');
  });
});

test('453 to every RCPT: no progress, so the recipients are soft (retried later), not looped', TIMEOUT, async () => {
  await withWorld({ sinks: [{ rcpt: () => '453 4.5.3 Too many recipients this hour' }] }, async (w) => {
    const id = await w.send(['b@dst.test', 'c@dst.test']);
    await w.settle();
    const m = w.message(id);
    assert.deepEqual(m.recipients.map((r) => [r.state, r.status, r.nextAttemptAt]), [['queued', '4.5.3', T0 + 60_000], ['queued', '4.5.3', T0 + 60_000]]);
  });
});

test('any other 5xx (550 to RCPT): hard — a failure DSN at once; RET=HDRS returns the header; ORCPT and ENVID come back', TIMEOUT, async () => {
  await withWorld({ sinks: [{ rcpt: (to) => (to.startsWith('nobody') ? '550 5.1.1 <nobody@dst.test>: Recipient address rejected: User unknown' : undefined) }] }, async (w) => {
    const id = await w.send(['b@dst.test', 'nobody@dst.test'], { mailParams: 'RET=HDRS ENVID=QQ314159', rcptParams: ['', 'ORCPT=rfc822;Nobody.Orig@dst.test'] });
    await w.settle();
    const m = w.message(id);
    assert.equal(m.state, 'done');
    assert.deepEqual(m.recipients.map((r) => [r.state, r.status]), [['delivered', '2.0.0'], ['bounced', '5.1.1']]);
    const dsn = only(dsns(w), 'DSN');
    assert.equal(dsn.headers.get('subject'), 'Undelivered Mail Returned to Sender');
    assert.equal(dsn.headers.get('to'), '<a@src.test>');
    assert.equal(dsn.headers.get('return-path'), '<>', 'a DSN comes from the null sender');
    assert.equal(dsn.perMessage.get('reporting-mta'), 'dns; mx.test');
    assert.equal(dsn.perMessage.get('original-envelope-id'), 'QQ314159');
    assert.equal(dsn.perMessage.get('arrival-date'), 'Sat, 28 Nov 2026 08:00:00 +0000');
    const r = only(dsn.perRecipient, 'recipient block');
    assert.equal(r.get('final-recipient'), 'rfc822; nobody@dst.test');
    assert.equal(r.get('original-recipient'), 'rfc822; Nobody.Orig@dst.test');
    assert.equal(r.get('action'), 'failed');
    assert.equal(r.get('status'), '5.1.1');
    assert.equal(r.get('remote-mta'), 'dns; mx1.dst.test');
    assert.equal(r.get('diagnostic-code'), 'smtp; 550 5.1.1 <nobody@dst.test>: Recipient address rejected: User unknown');
    assert.equal(r.get('last-attempt-date'), 'Sat, 28 Nov 2026 08:00:00 +0000');
    assert.equal(dsn.returned.headers.get('content-type'), 'text/rfc822-headers');
    assert.match(dsn.returned.body, /^Received: from client\.test[^]*Subject: delivery test\r\n/);
    assert.ok(!dsn.returned.body.includes('Hello.'), 'headers only');
    // The DSN itself went through the queue and was delivered like any message.
    const queued = w.gw.gateway.store.listMessages({ state: 'done' }).filter((q) => q.origin === 'dsn');
    assert.equal(queued.length, 1);
    assert.equal(queued[0].envelope.sender, '');
  });
});

test('RET=FULL returns the whole message; without RET a small message is returned whole too', TIMEOUT, async () => {
  await withWorld({ sinks: [{ rcpt: () => '550 5.1.1 User unknown' }] }, async (w) => {
    await w.send(['b@dst.test'], { mailParams: 'RET=FULL' });
    await w.send(['c@dst.test']);
    await w.settle();
    const [full, noRet] = dsns(w);
    assert.equal(full.returned.headers.get('content-type'), 'message/rfc822');
    assert.ok(full.returned.body.endsWith(DEFAULT_MESSAGE), 'the original, byte for byte');
    assert.equal(noRet.returned.headers.get('content-type'), 'message/rfc822');
  });
});

test('without RET, a message of 10 KB or more comes back as headers only', TIMEOUT, async () => {
  await withWorld({ sinks: [{ rcpt: () => '550 5.1.1 User unknown' }] }, async (w) => {
    await w.send(['b@dst.test'], { data: `${DEFAULT_MESSAGE}${'x'.repeat(76)}\r\n`.repeat(1).concat(`${'y'.repeat(998)}\r\n`.repeat(11)) });
    await w.settle();
    const dsn = only(dsns(w), 'DSN');
    assert.equal(dsn.returned.headers.get('content-type'), 'text/rfc822-headers');
  });
});

test('NXDOMAIN: hard 5.1.2; null MX: hard 5.1.10; neither MX nor address: hard 5.1.2 — one DSN with three blocks', TIMEOUT, async () => {
  await withWorld({
    sinks: [{}],
    records: [
      { name: 'nomail.test', type: 'MX', value: '.', priority: 0 },
      { name: 'bare.test', type: 'TXT', value: 'exists, but no MX, no A' },
    ],
  }, async (w) => {
    const id = await w.send(['x@nowhere.test', 'y@nomail.test', 'z@bare.test']);
    await w.settle();
    assert.deepEqual(w.message(id).recipients.map((r) => [r.state, r.status]), [['bounced', '5.1.2'], ['bounced', '5.1.10'], ['bounced', '5.1.2']]);
    const dsn = only(dsns(w), 'DSN');
    assert.deepEqual(dsn.perRecipient.map((r) => [r.get('final-recipient'), r.get('action'), r.get('status')]), [
      ['rfc822; x@nowhere.test', 'failed', '5.1.2'], ['rfc822; y@nomail.test', 'failed', '5.1.10'], ['rfc822; z@bare.test', 'failed', '5.1.2'],
    ]);
    assert.match(dsn.perRecipient[0].get('diagnostic-code') ?? '', /^X-Postern; Host or domain name not found/);
    assert.match(dsn.perRecipient[1].get('diagnostic-code') ?? '', /does not accept mail \(null MX\)/);
    assert.equal(dsn.perRecipient[0].get('remote-mta'), undefined, 'nobody answered');
  });
});

test('implicit MX: a domain with an A record and no MX gets its mail at that address', TIMEOUT, async () => {
  await withWorld({ sinks: [{}], mx: {}, records: [{ name: 'plain.test', type: 'A', value: '127.0.0.2' }] }, async (w) => {
    const id = await w.send(['b@plain.test']);
    await w.settle();
    assert.equal(w.message(id).state, 'done');
    assert.deepEqual(w.sinks[0].delivered(), ['b@plain.test']);
  });
});

test('MX preference order, equal preferences shuffled, and a 421 greeting moves on to the next host', TIMEOUT, async () => {
  // mx1 says 421 at the greeting; mx2 and mx3 share a preference: the injected randomness picks mx3 first.
  await withWorld({
    sinks: [{ greeting: { reply: '421 4.7.0 Too busy', close: true } }, {}, {}],
    mx: { 'dst.test': [[5, 1], [10, 2], [10, 3]] },
    random: () => 0,
  }, async (w) => {
    const id = await w.send(['b@dst.test']);
    await w.settle();
    assert.equal(w.message(id).state, 'done');
    assert.equal(w.sinks[0].connections, 1);
    assert.deepEqual(w.sinks[2].delivered(), ['b@dst.test']);
    assert.equal(w.sinks[1].connections, 0);
  });
});

test('a 4xx to RCPT is the destination\'s answer: the next MX is not tried', TIMEOUT, async () => {
  await withWorld({ sinks: [{ rcpt: () => '451 4.7.1 Greylisted' }, {}], mx: { 'dst.test': [[10, 1], [20, 2]] } }, async (w) => {
    await w.send(['b@dst.test']);
    await w.settle();
    assert.equal(w.sinks[1].connections, 0);
  });
});

test('SMTPUTF8 needed but not offered: hard 5.6.7, nothing sent', TIMEOUT, async () => {
  await withWorld({ sinks: [{ extensions: ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES'] }] }, async (w) => {
    const id = await w.send(['j\u00f6rg@dst.test'], { mailParams: 'SMTPUTF8' });
    await w.settle();
    const r = w.message(id).recipients[0];
    assert.deepEqual([r.state, r.status], ['bounced', '5.6.7']);
    assert.equal(w.sinks[0].messages.length, 0);
    assert.deepEqual(w.sinks[0].sessions[0].filter((c) => c.startsWith('MAIL')), [], 'no MAIL was sent');
    const dsn = only(dsns(w), 'DSN');
    assert.equal(dsn.parts[1].headers.get('content-type'), 'message/global-delivery-status');
    assert.equal(dsn.perRecipient[0].get('status'), '5.6.7');
  });
});

test('soft_bounce: true keeps a hard bounce queued as soft (class 4), no DSN', TIMEOUT, async () => {
  await withWorld({ sinks: [{ rcpt: () => '550 5.1.1 User unknown' }], yaml: 'soft_bounce: true' }, async (w) => {
    const id = await w.send(['b@dst.test']);
    await w.settle();
    const r = w.message(id).recipients[0];
    assert.deepEqual([r.state, r.status, r.lastReply], ['queued', '4.1.1', '550 5.1.1 User unknown']);
    assert.deepEqual(dsns(w), []);
  });
});

test('DSN parameters go to a next hop that offers DSN; NOTIFY=SUCCESS to one without DSN gets a "relayed" DSN', TIMEOUT, async () => {
  await withWorld({
    sinks: [{}, { extensions: ['PIPELINING', 'ENHANCEDSTATUSCODES'] }],
    mx: { 'dst.test': [[10, 1]], 'old.test': [[10, 2]] },
  }, async (w) => {
    await w.send(['b@dst.test'], { mailParams: 'RET=HDRS ENVID=E1', rcptParams: ['NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;B@dst.test'] });
    await w.settle();
    const m = only(w.sinks[0].messages, 'message');
    assert.match(m.mailParams, /RET=HDRS ENVID=E1/);
    assert.equal(m.rcpts[0].params, 'NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;B@dst.test');
    assert.deepEqual(dsns(w), [], 'the next hop reports success itself');

    await w.send(['c@old.test'], { rcptParams: ['NOTIFY=SUCCESS'] });
    await w.settle();
    assert.equal(w.sinks[1].messages[0].rcpts[0].params, '', 'no DSN parameters to a server without DSN');
    const dsn = only(dsns(w), 'DSN');
    assert.equal(dsn.headers.get('subject'), 'Successful Mail Delivery Report');
    assert.equal(dsn.perRecipient[0].get('action'), 'relayed');
    assert.equal(dsn.perRecipient[0].get('status'), '2.0.0');
  });
});

test('local delivery: Maildir with Return-Path and Delivered-To; NOTIFY=SUCCESS gets a "delivered" DSN', TIMEOUT, async () => {
  await withWorld({ sinks: [{}], yaml: 'domains: { local: [src.test, local.test] }' }, async (w) => {
    const id = await w.send(['Carol@local.test'], { rcptParams: ['NOTIFY=SUCCESS'] });
    await w.settle();
    assert.equal(w.message(id).state, 'done');
    const box = only(w.maildir('carol@local.test'), 'mail in the Maildir').toString('utf8');
    assert.match(box, /^Return-Path: <a@src\.test>\r\nDelivered-To: Carol@local\.test\r\nReceived: /);
    assert.ok(box.endsWith(DEFAULT_MESSAGE));
    const dsn = only(dsns(w), 'DSN');
    assert.equal(dsn.perRecipient[0].get('action'), 'delivered');
    assert.equal(w.gw.gateway.store.listAttempts(id)[0].nextHop, 'maildir');
  });
});

test('the null sender: a message from <> that bounces gets no DSN', TIMEOUT, async () => {
  await withWorld({ sinks: [{ rcpt: () => '550 5.1.1 User unknown' }] }, async (w) => {
    const id = await w.send(['b@dst.test'], { from: '' });
    await w.settle();
    assert.equal(w.message(id).recipients[0].state, 'bounced');
    assert.equal(w.gw.gateway.store.listMessages().filter((m) => m.origin !== 'received').length, 0);
  });
});

test('a DSN that bounces goes to the postmaster, once; the postmaster\'s copy bouncing goes nowhere', TIMEOUT, async () => {
  await withWorld({
    sinks: [{ rcpt: () => '550 5.1.1 User unknown' }],
    mx: { 'dst.test': [[10, 1]], 'gone.test': [[10, 1]], 'pm.test': [[10, 1]] },
    yaml: 'postmaster: hostmaster@pm.test',
  }, async (w) => {
    await w.send(['b@dst.test'], { from: 'sender@gone.test' });
    await w.settle();
    const all = w.gw.gateway.store.listMessages();
    const byOrigin = (o: string): number => all.filter((m) => m.origin === o).length;
    assert.equal(byOrigin('received'), 1);
    assert.equal(byOrigin('dsn'), 1, 'one DSN to the sender (it bounced)');
    assert.equal(byOrigin('postmaster-notice'), 1, 'one notice to the postmaster (it bounced too), and nothing after it');
    assert.equal(all.length, 3);
    assert.deepEqual(w.sinks[0].messages.length, 0);
    assert.deepEqual(w.sinks[0].sessions.flat().filter((c) => c.startsWith('RCPT')), [
      'RCPT TO:<b@dst.test>', 'RCPT TO:<sender@gone.test> NOTIFY=NEVER', 'RCPT TO:<hostmaster@pm.test> NOTIFY=NEVER',
    ], 'DSNs ask the next hop for no reports about themselves (RFC 3461 §6.2)');
    assert.ok(all.every((m) => m.state === 'done'));
  });
});

test('a message to a local postmaster copy: the DSN that bounces reaches a local postmaster Maildir', TIMEOUT, async () => {
  await withWorld({ sinks: [{ rcpt: () => '550 5.1.1 User unknown' }], mx: { 'dst.test': [[10, 1]], 'gone.test': [[10, 1]] } }, async (w) => {
    await w.send(['b@dst.test'], { from: 'sender@gone.test' });
    await w.settle();
    const copy = parseDsn(only(w.maildir('postmaster@mx.test'), 'postmaster copy'));
    assert.equal(copy.headers.get('subject'), 'Postmaster Copy: Undelivered Mail');
    assert.equal(copy.perRecipient[0].get('final-recipient'), 'rfc822; sender@gone.test');
    assert.equal(copy.returned.headers.get('content-type'), 'message/rfc822');
    assert.match(copy.returned.body, /Subject: Undelivered Mail Returned to Sender/, 'the failed DSN is attached');
  });
});

test('connection reuse: several messages to one host over one connection', TIMEOUT, async () => {
  const yaml = 'delivery: { smtp_port: $PORT, tls: none, connection_idle_time: 10s, concurrency: 1 }';
  await withWorld({ sinks: [{}], yaml }, async (w) => {
    for (let i = 0; i < 4; i++) await w.send([`r${i}@dst.test`]);
    await w.settle();
    assert.equal(w.sinks[0].messages.length, 4);
    assert.equal(w.sinks[0].connections, 1);
    assert.deepEqual(w.sinks[0].sessions[0].filter((c) => c.startsWith('EHLO')), ['EHLO mx.test']);
  });
});

test('a relay route over LMTP: per-recipient replies after the data (RFC 2033)', TIMEOUT, async () => {
  await withWorld({
    sinks: [{ lmtp: true, endOfData: (_m, rcpt) => (rcpt.startsWith('full') ? '452 4.2.2 Mailbox full' : '250 2.0.0 delivered') }],
    mx: {},
    yaml: 'domains: { local: [src.test], relay: { "store.test": "lmtp://127.0.0.2:$PORT" } }',
  }, async (w) => {
    const id = await w.send(['ok@store.test', 'full@store.test']);
    await w.settle();
    assert.deepEqual(w.message(id).recipients.map((r) => [r.state, r.status]), [['delivered', '2.0.0'], ['queued', '4.2.2']]);
    assert.deepEqual(w.sinks[0].sessions[0].slice(0, 1), ['LHLO mx.test']);
  });
});

test('local mailboxes over LMTP (mailboxes.transport: lmtp): the mail store answers per recipient (RFC 2033)', TIMEOUT, async () => {
  await withWorld({
    sinks: [{ lmtp: true, endOfData: (_m, rcpt) => (rcpt.startsWith('full') ? '552 5.2.2 Mailbox full' : '250 2.0.0 stored') }],
    mx: {},
    yaml: 'domains: { local: [src.test, store.test] }\nmailboxes: { transport: lmtp, lmtp_next_hop: "lmtp://127.0.0.2:$PORT" }',
  }, async (w) => {
    const id = await w.send(['ok@store.test', 'full@store.test']);
    await w.settle();
    assert.deepEqual(w.message(id).recipients.map((r) => [r.address, r.state, r.status]), [
      ['ok@store.test', 'delivered', '2.0.0'], ['full@store.test', 'bounced', '5.2.2']]);
    assert.equal(w.sinks[0].sessions[0][0], 'LHLO mx.test');
    assert.deepEqual(w.maildir('ok@store.test'), [], 'nothing written to a Maildir by Postern');
  });
});

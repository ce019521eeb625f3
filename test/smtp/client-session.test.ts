/**
 * The client session as a pure state machine: exact bytes out for replies in, per-recipient
 * outcomes, and a ClientSession ⇄ ServerSession pair in memory (h11's ConnectionPair).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ClientSession, type ClientSessionOptions } from '../../src/smtp/client/client-session.js';
import { NEED_DATA, type ClientEvent, type TransactionRequest } from '../../src/smtp/client/client-events.js';
import type { TransactionOutcome } from '../../src/smtp/client/rcpt-outcomes.js';
import { NO_MAIL_PARAMS, NO_RCPT_PARAMS, type MailParams } from '../../src/smtp/esmtp-params.js';
import { parseMailbox, type Mailbox } from '../../src/smtp/mailbox.js';
import { DataFramer, DotStuffer, dotStuff } from '../../src/smtp/data-framing.js';
import { SessionDriver } from '../support/session-driver.js';
import { reply } from '../../src/smtp/reply.js';

const EHLO_FULL = '250-mx.peer.test Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 DSN\r\n';
const EHLO_PLAIN = '250-mx.peer.test Hello\r\n250 ENHANCEDSTATUSCODES\r\n';

function mbox(address: string): Mailbox {
  const m = parseMailbox(address);
  assert.ok(m, address);
  return m;
}

function request(to: string[], params: Partial<MailParams> = {}, from: string | null = 'a@src.test'): TransactionRequest {
  return {
    reversePath: from === null ? null : mbox(from),
    params: { ...NO_MAIL_PARAMS, ...params },
    recipients: to.map((t) => ({ mailbox: mbox(t), params: NO_RCPT_PARAMS })),
  };
}

/** Drives a ClientSession: feeds server bytes, collects what it writes and the events. */
class ClientDriver {
  readonly session: ClientSession;
  readonly events: ClientEvent[] = [];
  private written = '';

  constructor(opts: Partial<ClientSessionOptions> = {}) {
    this.session = new ClientSession({ heloName: 'out.postern.test', ...opts });
  }

  feed(text: string): this {
    this.session.receiveData(Buffer.from(text, 'latin1'));
    return this.run();
  }

  run(): this {
    for (;;) {
      const e = this.session.nextEvent();
      if (e === NEED_DATA) break;
      this.events.push(e);
    }
    const out = this.session.dataToSend();
    if (out) this.written += out.toString('latin1');
    return this;
  }

  take(): string {
    const w = this.written;
    this.written = '';
    return w;
  }

  types(): string[] {
    const t = this.events.filter((e) => e.type !== 'reply').map((e) => e.type);
    this.events.length = 0;
    return t;
  }

  outcome(): TransactionOutcome {
    const e = this.events.find((x) => x.type === 'transaction-done');
    assert.ok(e && e.type === 'transaction-done', 'a transaction finished');
    this.events.splice(this.events.indexOf(e), 1);
    return e.outcome;
  }
}

/** "RCPT 550 5.1.1" per recipient: the command and reply that settled it. */
function summary(o: TransactionOutcome): string[] {
  return o.recipients.map((r) => {
    const f = r.result;
    if (f.kind === 'reply') return `${f.command} ${f.reply.code}${f.reply.enhanced ? ` ${f.reply.enhanced}` : ''}`;
    if (f.kind === 'refusal') return `refused ${f.refusal.kind}`;
    return `failure ${f.failure.kind}`;
  });
}

function established(ehlo = EHLO_FULL, opts: Partial<ClientSessionOptions> = {}): ClientDriver {
  const d = new ClientDriver({ tls: 'none', ...opts });
  d.feed('220 mx.peer.test ESMTP\r\n');
  assert.equal(d.take(), 'EHLO out.postern.test\r\n');
  d.feed(ehlo);
  assert.deepEqual(d.types(), ['ready']);
  return d;
}

test('greeting, EHLO, a pipelined transaction, the body dot-stuffed, QUIT — byte for byte', () => {
  const d = established();
  assert.equal(d.session.waitingFor(), null);
  assert.equal(d.session.startTransaction(request(['b@dst.test', 'c@dst.test'], { size: 77, body: '8BITMIME' })), null);
  assert.equal(
    d.run().take(),
    'MAIL FROM:<a@src.test> SIZE=77 BODY=8BITMIME\r\nRCPT TO:<b@dst.test>\r\nRCPT TO:<c@dst.test>\r\nDATA\r\n',
  );
  assert.equal(d.session.waitingFor(), 'mail');
  d.feed('250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <c@dst.test>: User unknown\r\n');
  assert.equal(d.session.waitingFor(), 'data-init');
  d.feed('354 End data with <CR><LF>.<CR><LF>\r\n');
  assert.deepEqual(d.types(), ['send-body']);
  assert.equal(d.session.waitingFor(), 'data-block');
  d.session.sendBody(Buffer.from('Subject: x\r\n\r\n.leading dot\r\n'));
  d.session.sendBody(Buffer.from('.'));
  d.session.sendBody(Buffer.from('.two\r\nlast'));
  d.session.endBody();
  assert.equal(d.run().take(), 'Subject: x\r\n\r\n..leading dot\r\n...two\r\nlast\r\n.\r\n');
  assert.equal(d.session.waitingFor(), 'data-term');
  d.feed('250 2.0.0 Ok: queued as 42\r\n');
  const o = d.outcome();
  assert.deepEqual(summary(o), ['END-OF-DATA 250 2.0.0', 'RCPT 550 5.1.1']);
  assert.equal(o.mail?.code, 250);
  assert.equal(o.recipients[1].result.kind === 'reply' && o.recipients[1].result.reply.lines[0], '<c@dst.test>: User unknown');
  assert.ok(d.session.isReady);
  d.session.quit();
  assert.equal(d.run().take(), 'QUIT\r\n');
  assert.equal(d.session.waitingFor(), 'quit');
  d.feed('221 2.0.0 Bye\r\n');
  assert.deepEqual(d.types(), ['closed']);
  assert.ok(d.session.isClosed);
});

test('EHLO refused with 5xx: HELO, no extensions, one command at a time, no parameters', () => {
  const d = new ClientDriver({ tls: 'none' });
  d.feed('220 old.peer.test\r\n');
  assert.equal(d.take(), 'EHLO out.postern.test\r\n');
  d.feed('502 Command not implemented\r\n');
  assert.equal(d.take(), 'HELO out.postern.test\r\n');
  d.feed('250 old.peer.test\r\n');
  assert.deepEqual(d.types(), ['ready']);
  assert.equal(d.session.extensions.pipelining, false);
  d.session.startTransaction(request(['b@dst.test', 'c@dst.test'], { size: 10, ret: 'HDRS', envid: 'E1' }));
  assert.equal(d.run().take(), 'MAIL FROM:<a@src.test>\r\n');
  d.feed('250 ok\r\n');
  assert.equal(d.take(), 'RCPT TO:<b@dst.test>\r\n');
  d.feed('250 ok\r\n');
  assert.equal(d.take(), 'RCPT TO:<c@dst.test>\r\n');
  d.feed('250 ok\r\n');
  assert.equal(d.take(), 'DATA\r\n');
  d.feed('354 go\r\n');
  d.session.sendBody(Buffer.from('no final newline'));
  d.session.endBody();
  assert.equal(d.run().take(), 'no final newline\r\n.\r\n');
  d.feed('250 queued\r\n');
  const o = d.outcome();
  assert.deepEqual(summary(o), ['END-OF-DATA 250', 'END-OF-DATA 250']);
  assert.equal(o.dsnPassedOn, false);
});

test('EHLO refused with 4xx (not 5xx) ends the session; a 554 greeting gets QUIT', () => {
  const d = new ClientDriver();
  d.feed('220 x\r\n').take();
  d.feed('451 4.3.0 try later\r\n');
  assert.deepEqual(d.types(), ['session-failed', 'closed']);
  const g = new ClientDriver();
  g.feed('554 5.7.1 go away\r\n');
  assert.equal(g.take(), 'QUIT\r\n');
  const failed = g.events.find((e) => e.type === 'session-failed');
  assert.ok(failed && failed.type === 'session-failed' && failed.failure.kind === 'reply' && failed.failure.command === 'CONNECT');
});

test('DSN parameters go to a server that offers DSN, and only then', () => {
  const withDsn = established();
  const req: TransactionRequest = {
    reversePath: mbox('a@src.test'),
    params: { ...NO_MAIL_PARAMS, ret: 'HDRS', envid: 'QQ 314+159' },
    recipients: [{ mailbox: mbox('b@dst.test'), params: { notify: ['SUCCESS', 'DELAY'], orcpt: { addrType: 'rfc822', address: 'B@dst.test' } } }],
  };
  withDsn.session.startTransaction(req);
  assert.equal(
    withDsn.run().take(),
    'MAIL FROM:<a@src.test> RET=HDRS ENVID=QQ+20314+2B159\r\nRCPT TO:<b@dst.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;B@dst.test\r\nDATA\r\n',
  );
  const without = established('250-peer\r\n250 PIPELINING\r\n');
  without.session.startTransaction(req);
  assert.equal(without.run().take(), 'MAIL FROM:<a@src.test>\r\nRCPT TO:<b@dst.test>\r\nDATA\r\n');
  without.feed('250 ok\r\n250 ok\r\n354 go\r\n');
  without.session.endBody();
  without.feed('250 ok\r\n');
  assert.equal(without.outcome().dsnPassedOn, false);
});

test('the client refuses what the server cannot take: SMTPUTF8, 8BITMIME, SIZE', () => {
  const plain = established('250-peer\r\n250 SIZE 100\r\n');
  assert.deepEqual(plain.session.startTransaction(request(['b@dst.test'], { smtputf8: true })), { kind: 'smtputf8-not-offered' });
  assert.deepEqual(summary(plain.run().outcome()), ['refused smtputf8-not-offered']);
  assert.deepEqual(plain.session.startTransaction(request(['b@dst.test'], { body: '8BITMIME' })), { kind: '8bitmime-not-offered' });
  assert.deepEqual(plain.session.startTransaction(request(['b@dst.test'], { size: 101 })), { kind: 'size-exceeded', size: 101, limit: 100 });
  assert.equal(plain.run().take(), '', 'nothing was sent');
  assert.ok(plain.session.isReady);
  // SMTPUTF8 offered: the parameter goes with MAIL, UTF-8 addresses as they are.
  const utf8 = established();
  utf8.session.startTransaction(request(['j\u00f6rg@b\u00fccher.test'], { smtputf8: true }));
  assert.equal(utf8.run().take(), 'MAIL FROM:<a@src.test> SMTPUTF8\r\nRCPT TO:<j\u00c3\u00b6rg@b\u00c3\u00bccher.test>\r\nDATA\r\n');
});

test('421 in the middle of a transaction: every unfinished recipient gets it, the session ends', () => {
  const d = established();
  d.session.startTransaction(request(['b@dst.test', 'c@dst.test', 'd@dst.test']));
  d.run().take();
  d.feed('250 2.1.0 ok\r\n550 5.1.1 unknown\r\n421 4.3.2 shutting down\r\n');
  const o = d.outcome();
  assert.deepEqual(summary(o), ['RCPT 550 5.1.1', 'RCPT 421 4.3.2', 'RCPT 421 4.3.2']);
  assert.deepEqual(d.types(), ['session-failed', 'closed']);
  assert.ok(d.session.isClosed);
});

test('452 after two recipients: the rest are reported as such, and the next transaction starts with RSET only when needed', () => {
  const d = established();
  d.session.startTransaction(request(['r1@dst.test', 'r2@dst.test', 'r3@dst.test', 'r4@dst.test']));
  d.run().take();
  d.feed('250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n452 4.5.3 Too many recipients\r\n452 4.5.3 Too many recipients\r\n354 go\r\n');
  d.session.sendBody(Buffer.from('x\r\n'));
  d.session.endBody();
  d.run().take();
  d.feed('250 2.0.0 queued\r\n');
  assert.deepEqual(summary(d.outcome()), ['END-OF-DATA 250 2.0.0', 'END-OF-DATA 250 2.0.0', 'RCPT 452 4.5.3', 'RCPT 452 4.5.3']);
  // Every recipient refused: the server still has an open transaction.
  d.session.startTransaction(request(['r3@dst.test']));
  d.run().take();
  d.feed('250 2.1.0 ok\r\n550 5.1.1 no\r\n554 5.5.1 No valid recipients\r\n');
  assert.deepEqual(summary(d.outcome()), ['RCPT 550 5.1.1']);
  d.session.startTransaction(request(['r4@dst.test']));
  assert.equal(d.run().take(), 'RSET\r\nMAIL FROM:<a@src.test>\r\nRCPT TO:<r4@dst.test>\r\nDATA\r\n');
  assert.equal(d.session.waitingFor(), 'rset');
});

test('MAIL refused: its reply decides every recipient, the pipelined rest is consumed, no RSET follows', () => {
  const d = established();
  d.session.startTransaction(request(['b@dst.test', 'c@dst.test'], {}, null));
  assert.match(d.run().take(), /^MAIL FROM:<>\r\n/);
  d.feed('550 5.7.1 sender refused\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n');
  assert.deepEqual(summary(d.outcome()), ['MAIL 550 5.7.1', 'MAIL 550 5.7.1']);
  d.session.startTransaction(request(['b@dst.test']));
  assert.match(d.run().take(), /^MAIL /);
});

test('354 although every recipient was refused: an empty body ends it at once', () => {
  const d = established();
  d.session.startTransaction(request(['b@dst.test']));
  d.run().take();
  d.feed('250 ok\r\n550 5.1.1 no\r\n354 go ahead anyway\r\n');
  assert.equal(d.take(), '.\r\n');
  d.feed('554 5.5.1 no valid recipients\r\n');
  assert.deepEqual(summary(d.outcome()), ['RCPT 550 5.1.1']);
});

test('the connection drops or times out: the open transaction is settled with the failure naming the command', () => {
  const d = established();
  d.session.startTransaction(request(['b@dst.test']));
  d.run().take();
  d.feed('250 ok\r\n250 ok\r\n354 go\r\n');
  assert.deepEqual(d.types(), ['send-body']);
  d.session.sendBody(Buffer.from('half'));
  d.session.connectionLost('ECONNRESET');
  d.run();
  const o = d.outcome();
  const f = o.recipients[0].result;
  assert.ok(f.kind === 'failure' && f.failure.kind === 'connection-lost' && f.failure.command === 'DATA');
  assert.deepEqual(d.types(), ['session-failed', 'closed']);

  const t = established();
  t.session.startTransaction(request(['b@dst.test']));
  t.run().take();
  t.feed('250 ok\r\n250 ok\r\n354 go\r\n');
  t.session.endBody();
  assert.equal(t.session.waitingFor(), 'data-term');
  t.session.timeout();
  t.run();
  const to = t.outcome().recipients[0].result;
  assert.ok(to.kind === 'failure' && to.failure.kind === 'timeout' && to.failure.command === 'END-OF-DATA' && to.failure.timeout === 'data-term');

  const g = new ClientDriver();
  assert.equal(g.session.waitingFor(), 'greeting');
  g.session.timeout();
  g.run();
  const gf = g.events.find((e) => e.type === 'session-failed');
  assert.ok(gf && gf.type === 'session-failed' && gf.failure.kind === 'timeout' && gf.failure.command === 'CONNECT');
});

test('a reply during the body (552 mid-stream) settles the transaction with it', () => {
  const d = established();
  d.session.startTransaction(request(['b@dst.test']));
  d.run().take();
  d.feed('250 ok\r\n250 ok\r\n354 go\r\n');
  d.session.sendBody(Buffer.from('x'.repeat(100)));
  d.feed('552 5.3.4 too big\r\n');
  assert.deepEqual(summary(d.outcome()), ['END-OF-DATA 552 5.3.4']);
});

test('STARTTLS: opportunistic when offered; plaintext after the 220 is dropped; EHLO again after the handshake', () => {
  const d = new ClientDriver({ tls: 'opportunistic' });
  d.feed('220 peer\r\n').take();
  d.feed('250-peer\r\n250-PIPELINING\r\n250 STARTTLS\r\n');
  assert.equal(d.take(), 'STARTTLS\r\n');
  assert.equal(d.session.waitingFor(), 'starttls');
  // An attacker injects a reply behind the 220 (CVE-2011-0411 style): it must be ignored.
  d.feed('220 2.0.0 Ready to start TLS\r\n250 2.1.0 injected\r\n');
  assert.deepEqual(d.types(), ['start-tls']);
  d.feed('250 more plaintext\r\n');
  assert.deepEqual(d.types(), []);
  d.session.tlsEstablished();
  assert.equal(d.run().take(), 'EHLO out.postern.test\r\n');
  d.feed('250-peer\r\n250 PIPELINING\r\n');
  const ready = d.events.find((e) => e.type === 'ready');
  assert.ok(ready && ready.type === 'ready' && ready.tls === true);

  const refused = new ClientDriver({ tls: 'opportunistic' });
  refused.feed('220 peer\r\n').take();
  refused.feed('250-peer\r\n250 STARTTLS\r\n').take();
  refused.feed('454 4.7.0 TLS not available\r\n');
  assert.deepEqual(refused.types(), ['ready'], 'opportunistic: on in plaintext');
  assert.equal(refused.session.isTls, false);

  const required = new ClientDriver({ tls: 'required' });
  required.feed('220 peer\r\n').take();
  required.feed('250-peer\r\n250 PIPELINING\r\n');
  assert.equal(required.take(), 'QUIT\r\n');
  const f = required.events.find((e) => e.type === 'session-failed');
  assert.ok(f && f.type === 'session-failed' && f.failure.kind === 'tls-not-offered');

  const none = new ClientDriver({ tls: 'none' });
  none.feed('220 peer\r\n').take();
  none.feed('250-peer\r\n250 STARTTLS\r\n');
  assert.deepEqual(none.types(), ['ready'], 'tls: none never starts TLS');
});

test('LMTP: LHLO, and one reply per accepted recipient after the end of data (RFC 2033)', () => {
  const d = new ClientDriver({ protocol: 'lmtp', tls: 'none' });
  d.feed('220 lmtp.peer\r\n');
  assert.equal(d.take(), 'LHLO out.postern.test\r\n');
  d.feed('250-lmtp.peer\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n');
  d.session.startTransaction(request(['a1@dst.test', 'a2@dst.test', 'a3@dst.test']));
  d.run().take();
  d.feed('250 ok\r\n250 ok\r\n550 5.1.1 no\r\n250 ok\r\n354 go\r\n');
  d.session.sendBody(Buffer.from('hi\r\n'));
  d.session.endBody();
  d.run().take();
  d.feed('250 2.0.0 delivered\r\n');
  assert.equal(d.events.some((e) => e.type === 'transaction-done'), false, 'still waiting for the second reply');
  d.feed('452 4.2.2 mailbox full\r\n');
  assert.deepEqual(summary(d.outcome()), ['END-OF-DATA 250 2.0.0', 'RCPT 550 5.1.1', 'END-OF-DATA 452 4.2.2']);
});

test('protocol errors: junk instead of a reply, an unsolicited reply', () => {
  const d = new ClientDriver();
  d.feed('HTTP/1.1 400 Bad Request\r\n');
  const f = d.events.find((e) => e.type === 'session-failed');
  assert.ok(f && f.type === 'session-failed' && f.failure.kind === 'protocol' && f.failure.command === 'CONNECT');
  const u = established();
  u.feed('421 4.4.2 idle too long\r\n');
  assert.deepEqual(u.types(), ['session-failed', 'closed']);
});

test('DotStuffer: streamed stuffing equals whole-body stuffing, and the server framing undoes it (property)', () => {
  const line = fc.stringMatching(/^[.a-z \u00e4]{0,12}$/);
  fc.assert(
    fc.property(fc.array(line, { maxLength: 12 }), fc.boolean(), fc.array(fc.nat(40), { maxLength: 6 }), (lines, finalCrlf, cuts) => {
      const text = lines.join('\r\n') + (finalCrlf && lines.length > 0 ? '\r\n' : '');
      const body = Buffer.from(text, 'utf8');
      const whole = dotStuff(body);
      const stuffer = new DotStuffer();
      const parts: Buffer[] = [];
      let at = 0;
      for (const c of [...cuts].sort((a, b) => a - b)) {
        const end = Math.min(c, body.length);
        if (end < at) continue;
        parts.push(stuffer.push(body.subarray(at, end)));
        at = end;
      }
      parts.push(stuffer.push(body.subarray(at)), stuffer.end());
      const streamed = Buffer.concat(parts);
      assert.deepEqual(streamed, whole);
      const framer = new DataFramer('reject', true);
      const got: Buffer[] = [];
      const r = framer.feed(streamed, 0, streamed.length, (c) => got.push(Buffer.from(c)));
      assert.equal(r.ended, true);
      assert.equal(r.consumed, streamed.length);
      const expected = body.length === 0 || body.subarray(-2).toString() === '\r\n' ? body : Buffer.concat([body, Buffer.from('\r\n')]);
      assert.deepEqual(Buffer.concat(got), expected);
    }),
    { numRuns: 300 },
  );
});

/** Connects a ClientSession and a ServerSession in memory and runs them until both are quiet. */
function pump(client: ClientDriver, server: SessionDriver, onEvent: (e: ClientEvent) => void): void {
  for (let rounds = 0; rounds < 100; rounds++) {
    const fromServer = server.take();
    if (fromServer) client.feed(fromServer);
    const fresh = client.events.splice(0);
    fresh.forEach(onEvent);
    const fromClient = client.run().take();
    if (!fromServer && !fromClient && fresh.length === 0) return;
    if (fromClient) server.feed(fromClient);
  }
  throw new Error('the pair did not settle');
}

test('ClientSession ⇄ ServerSession in memory: two messages on one connection, the bodies arrive byte-exact', () => {
  const server = new SessionDriver({}, (e) => (e.type === 'rcpt' && e.forwardPath.localPart === 'nobody'
    ? { kind: 'reject', reply: reply('rcpt.unknown-user') } : undefined));
  const client = new ClientDriver({ tls: 'opportunistic' });
  const bodies = [
    Buffer.from('Subject: one\r\n\r\n.\r\n..\r\n.x\r\n\u00e4\u00f6\u00fc\r\n', 'utf8'),
    Buffer.from('Subject: two\r\n\r\nend without newline', 'utf8'),
  ];
  const outcomes: TransactionOutcome[] = [];
  const queue = [
    request(['b@dst.test', 'nobody@dst.test'], { size: bodies[0].length, body: '8BITMIME' }),
    request(['c@dst.test'], { size: bodies[1].length }),
  ];
  let sending = 0;
  pump(client, server, (e) => {
    if (e.type === 'ready' || e.type === 'transaction-done') {
      if (e.type === 'transaction-done') outcomes.push(e.outcome);
      const next = queue.shift();
      if (next) client.session.startTransaction(next);
      else client.session.quit();
    }
    if (e.type === 'send-body') {
      client.session.sendBody(bodies[sending++]);
      client.session.endBody();
    }
  });
  assert.deepEqual(outcomes.map(summary), [['END-OF-DATA 250 2.0.0', 'RCPT 550 5.1.1'], ['END-OF-DATA 250 2.0.0']]);
  assert.ok(client.session.isClosed);
  assert.ok(server.closed);
  const received = server.body().toString('utf8');
  assert.equal(received, `${bodies[0].toString('utf8')}${bodies[1].toString('utf8')}\r\n`);
  const mails = server.events.filter((e) => e.type === 'mail');
  assert.equal(mails.length, 2);
  assert.ok(mails[0].type === 'mail' && mails[0].params.size === bodies[0].length && mails[0].params.body === '8BITMIME');
});

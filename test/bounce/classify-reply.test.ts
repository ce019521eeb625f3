/**
 * Classification as a table: every row of the "Sending" table of reply-codes.md, as facts in and
 * verdicts out. (The same rows are exercised over real sockets in test/delivery/.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyFact, softened, type DeliveryOutcome, type FailureScope } from '../../src/bounce/classify-reply.js';
import type { DeliveryFact } from '../../src/bounce/delivery-fact.js';
import type { ClientCommand } from '../../src/smtp/client/client-events.js';
import { replyFromLines } from '../../src/smtp/reply-parser.js';

function reply(command: ClientCommand, code: number, text: string): DeliveryFact {
  return { kind: 'reply', command, reply: replyFromLines(code, [text]) };
}

interface Row {
  readonly row: string;
  readonly fact: DeliveryFact;
  readonly outcome: DeliveryOutcome;
  readonly status: string;
  readonly scope?: FailureScope;
  readonly diagnostic?: RegExp;
}

const TABLE: readonly Row[] = [
  // | 2xx to the end of data | delivered |
  { row: '2xx to the end of data', fact: reply('END-OF-DATA', 250, '2.0.0 Ok: queued as 4F2'), outcome: 'delivered', status: '2.0.0', diagnostic: /^250 2\.0\.0 Ok: queued as 4F2$/ },
  { row: '2xx to the end of data, no enhanced code', fact: reply('END-OF-DATA', 250, 'Ok'), outcome: 'delivered', status: '2.0.0' },
  { row: '2xx per recipient after end of data (LMTP)', fact: reply('END-OF-DATA', 250, '2.1.5 delivered'), outcome: 'delivered', status: '2.1.5' },
  // | any 4xx; 421 at any point; connection refused, reset or timed out; TLS failure; DNS SERVFAIL or timeout | soft |
  { row: '4xx to MAIL', fact: reply('MAIL', 451, '4.3.0 local error'), outcome: 'soft', status: '4.3.0', scope: 'message' },
  { row: '4xx to RCPT (greylisting)', fact: reply('RCPT', 450, '4.2.0 Greylisted'), outcome: 'soft', status: '4.2.0', scope: 'recipient' },
  { row: '4xx to DATA', fact: reply('DATA', 451, '4.3.0 try later'), outcome: 'soft', status: '4.3.0' },
  { row: '4xx to the end of data', fact: reply('END-OF-DATA', 452, '4.3.1 Insufficient system storage'), outcome: 'soft', status: '4.3.1' },
  { row: '4xx without enhanced code', fact: reply('RCPT', 450, 'mailbox busy'), outcome: 'soft', status: '4.0.0' },
  { row: '4xx greeting', fact: reply('CONNECT', 450, 'busy'), outcome: 'soft', status: '4.0.0', scope: 'session' },
  { row: '421 at the greeting', fact: reply('CONNECT', 421, '4.7.0 Too many connections'), outcome: 'soft', status: '4.7.0', scope: 'session' },
  { row: '421 to RCPT', fact: reply('RCPT', 421, '4.3.2 shutting down'), outcome: 'soft', status: '4.3.2', scope: 'session' },
  { row: '421 at the end of data', fact: reply('END-OF-DATA', 421, '4.4.2 timeout'), outcome: 'soft', status: '4.4.2', scope: 'session' },
  { row: 'connection refused', fact: { kind: 'connect', failure: 'refused', host: 'mx.dst.test[127.0.0.2]:25', detail: 'ECONNREFUSED' }, outcome: 'soft', status: '4.4.1', scope: 'session', diagnostic: /Connection refused/ },
  { row: 'connect timed out', fact: { kind: 'connect', failure: 'timeout', host: 'mx.dst.test[127.0.0.2]:25', detail: '' }, outcome: 'soft', status: '4.4.1', scope: 'session' },
  { row: 'connection reset mid-session', fact: { kind: 'session', failure: { kind: 'connection-lost', command: 'RCPT', detail: 'ECONNRESET' } }, outcome: 'soft', status: '4.4.2', scope: 'session', diagnostic: /lost connection while sending RCPT TO/ },
  { row: 'no reply in time (timeout)', fact: { kind: 'session', failure: { kind: 'timeout', command: 'END-OF-DATA', timeout: 'data-term' } }, outcome: 'soft', status: '4.4.2', scope: 'session', diagnostic: /timed out while sending end of DATA/ },
  { row: 'TLS handshake failure', fact: { kind: 'session', failure: { kind: 'tls-failed', detail: 'wrong version number' } }, outcome: 'soft', status: '4.7.5', scope: 'session' },
  { row: 'TLS required, not offered', fact: { kind: 'session', failure: { kind: 'tls-not-offered' } }, outcome: 'soft', status: '4.7.4', scope: 'session' },
  { row: 'TLS required, STARTTLS refused', fact: { kind: 'session', failure: { kind: 'reply', command: 'STARTTLS', reply: replyFromLines(454, ['4.7.0 TLS not available']) } }, outcome: 'soft', status: '4.7.0', scope: 'session' },
  { row: 'DNS SERVFAIL or timeout', fact: { kind: 'dns', failure: 'temporary', domain: 'dst.test', detail: 'ESERVFAIL' }, outcome: 'soft', status: '4.4.3' },
  { row: 'protocol error (junk for a reply)', fact: { kind: 'session', failure: { kind: 'protocol', command: 'MAIL', detail: 'malformed reply line' } }, outcome: 'soft', status: '4.5.0', scope: 'session' },
  // | 552 to RCPT | soft (RFC 5321 §4.5.3.1.10) |
  { row: '552 to RCPT', fact: reply('RCPT', 552, '5.2.2 Mailbox full'), outcome: 'soft', status: '4.2.2' },
  { row: '552 to RCPT without enhanced code', fact: reply('RCPT', 552, 'Too many recipients'), outcome: 'soft', status: '4.5.3' },
  // | 452 or 453 to RCPT | the rest in a new transaction right away |
  { row: '452 to RCPT', fact: reply('RCPT', 452, '4.5.3 Too many recipients'), outcome: 'retry-now', status: '4.5.3' },
  { row: '453 to RCPT', fact: reply('RCPT', 453, '4.5.3 Too many recipients this hour'), outcome: 'retry-now', status: '4.5.3' },
  { row: '452 to RCPT without enhanced code', fact: reply('RCPT', 452, 'Too many'), outcome: 'retry-now', status: '4.5.3' },
  // | any other 5xx | hard |
  { row: '550 to RCPT', fact: reply('RCPT', 550, '5.1.1 User unknown'), outcome: 'hard', status: '5.1.1', scope: 'recipient', diagnostic: /^550 5\.1\.1 User unknown$/ },
  { row: '553 to MAIL', fact: reply('MAIL', 553, '5.1.7 bad sender'), outcome: 'hard', status: '5.1.7', scope: 'message' },
  { row: '552 to the end of data (size)', fact: reply('END-OF-DATA', 552, '5.3.4 Message too big'), outcome: 'hard', status: '5.3.4' },
  { row: '554 to the end of data (content)', fact: reply('END-OF-DATA', 554, '5.7.1 rejected'), outcome: 'hard', status: '5.7.1' },
  { row: '554 to DATA (no valid recipients)', fact: reply('DATA', 554, '5.5.1 No valid recipients'), outcome: 'hard', status: '5.5.1' },
  { row: '5xx without enhanced code', fact: reply('RCPT', 550, 'no such user'), outcome: 'hard', status: '5.0.0' },
  { row: '554 greeting', fact: { kind: 'session', failure: { kind: 'reply', command: 'CONNECT', reply: replyFromLines(554, ['5.7.1 go away']) } }, outcome: 'hard', status: '5.7.1', scope: 'session' },
  { row: 'SMTPUTF8 needed, not offered', fact: { kind: 'refusal', refusal: { kind: 'smtputf8-not-offered' } }, outcome: 'hard', status: '5.6.7' },
  { row: '8BITMIME needed, not offered', fact: { kind: 'refusal', refusal: { kind: '8bitmime-not-offered' } }, outcome: 'hard', status: '5.6.3' },
  { row: 'larger than the server SIZE', fact: { kind: 'refusal', refusal: { kind: 'size-exceeded', size: 2000, limit: 1000 } }, outcome: 'hard', status: '5.3.4' },
  // | NXDOMAIN, null MX, neither MX nor address records | hard 5.1.2 / 5.1.10 |
  { row: 'NXDOMAIN', fact: { kind: 'dns', failure: 'nxdomain', domain: 'nowhere.test', detail: 'ENOTFOUND' }, outcome: 'hard', status: '5.1.2', diagnostic: /nowhere\.test/ },
  { row: 'null MX (RFC 7505)', fact: { kind: 'dns', failure: 'null-mx', domain: 'nomail.test', detail: '' }, outcome: 'hard', status: '5.1.10' },
  { row: 'neither MX nor address records', fact: { kind: 'dns', failure: 'no-address', domain: 'bare.test', detail: '' }, outcome: 'hard', status: '5.1.2' },
  { row: 'MX hosts without addresses', fact: { kind: 'dns', failure: 'mx-hosts-unresolvable', domain: 'dangling.test', detail: '' }, outcome: 'hard', status: '5.4.4' },
  // Local deliveries (plain Maildir).
  { row: 'delivered to a mailbox', fact: { kind: 'local-delivered', detail: 'delivered to maildir' }, outcome: 'delivered', status: '2.0.0' },
  { row: 'mailbox disk full', fact: { kind: 'local-failure', failure: 'no-space', detail: 'ENOSPC' }, outcome: 'soft', status: '4.3.1' },
  { row: 'mail loop', fact: { kind: 'loop', host: '127.0.0.1:2525' }, outcome: 'hard', status: '5.4.6' },
];

for (const r of TABLE) {
  test(`classify: ${r.row} → ${r.outcome} ${r.status}`, () => {
    const c = classifyFact(r.fact);
    assert.equal(c.outcome, r.outcome);
    assert.equal(c.status, r.status);
    if (r.scope) assert.equal(c.scope, r.scope);
    if (r.diagnostic) assert.match(c.diagnostic.text, r.diagnostic);
    assert.equal(c.diagnostic.type, r.fact.kind === 'reply' || (r.fact.kind === 'session' && r.fact.failure.kind === 'reply') ? 'smtp' : 'X-Postern');
    assert.equal(classifyFact(r.fact).outcome, c.outcome, 'pure: the same fact, the same verdict');
  });
}

test('classify: every 4xx code is soft and every 5xx code but 552 to RCPT is hard, at every command', () => {
  const commands: ClientCommand[] = ['CONNECT', 'EHLO', 'MAIL', 'RCPT', 'DATA', 'END-OF-DATA'];
  for (const command of commands) {
    for (let code = 400; code < 600; code++) {
      const c = classifyFact(reply(command, code, 'x'));
      if (code === 421) assert.equal(c.scope, 'session');
      const expected = code < 500
        ? (command === 'RCPT' && (code === 452 || code === 453) ? 'retry-now' : 'soft')
        : (command === 'RCPT' && code === 552 ? 'soft' : 'hard');
      assert.equal(c.outcome, expected, `${code} to ${command}`);
    }
  }
});

test('soft_bounce: a hard verdict becomes soft with a class-4 status; others stay', () => {
  const hard = classifyFact(reply('RCPT', 550, '5.1.1 User unknown'));
  const s = softened(hard);
  assert.equal(s.outcome, 'soft');
  assert.equal(s.status, '4.1.1');
  assert.equal(s.diagnostic.text, hard.diagnostic.text, 'the diagnostic keeps the real reply');
  const nx = softened(classifyFact({ kind: 'dns', failure: 'nxdomain', domain: 'x.test', detail: '' }));
  assert.deepEqual([nx.outcome, nx.status], ['soft', '4.1.2']);
  const ok = classifyFact(reply('END-OF-DATA', 250, 'ok'));
  assert.equal(softened(ok), ok);
});

test('a local mailbox’s own verdict is taken as given: a local 552 5.2.2 stays hard, unlike 552 to RCPT from a remote server', () => {
  const local = (outcome: 'soft' | 'hard', status: string, text: string): DeliveryFact => ({ kind: 'local-refused', outcome, status, text, detail: 'why' });
  const hard = classifyFact(local('hard', '5.2.2', '552 5.2.2 Recipient address rejected: Mailbox full'));
  assert.deepEqual([hard.outcome, hard.status, hard.diagnostic], ['hard', '5.2.2', { type: 'X-Postern', text: '552 5.2.2 Recipient address rejected: Mailbox full (why)' }]);
  assert.equal(classifyFact(reply('RCPT', 552, '5.2.2 Mailbox full')).outcome, 'soft');
  const soft = classifyFact(local('soft', '4.2.2', '452 4.2.2 Recipient address rejected: Mailbox full'));
  assert.deepEqual([soft.outcome, soft.status], ['soft', '4.2.2']);
  const expanded = classifyFact({ kind: 'local-expanded', mode: 'alias', targets: ['a@x.test', 'b@y.test'], detail: 'alias expanded to 2 addresses' });
  assert.deepEqual([expanded.outcome, expanded.status, expanded.rule], ['delivered', '2.0.0', 'alias expanded']);
  // soft_bounce still turns the hard one soft.
  assert.deepEqual([softened(hard).outcome, softened(hard).status], ['soft', '4.2.2']);
});

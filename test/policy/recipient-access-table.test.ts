/**
 * The recipient access table, row by row, and the relay tricks as a table: for a client that may
 * not relay, no address that some MTA could route to an outside domain is accepted — whatever
 * the case of the domain, with or without a trailing dot. (The socket-level version, where the
 * grammar refuses some of them first, is in test/server/policy-rcpt.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RecipientLookup } from '../../src/policy/facts.js';
import {
  AddressList, ListRecipientDirectory, normalizeDomain, RecipientAccessTable, unquoteLocalPart, type RecipientDecision,
} from '../../src/policy/recipient-access-table.js';
import { POSTMASTER, type Mailbox } from '../../src/smtp/mailbox.js';
import { reply } from '../../src/smtp/reply.js';

/** A mailbox as the grammar hands it over: local part as on the wire, domain as given. */
function box(localPart: string, domain: string): Mailbox {
  return { localPart, domain, utf8: false };
}

const table = new RecipientAccessTable({
  localDomains: ['example.test'],
  relayDomains: ['partner.test'],
  blocked: ['blocked@example.test', '@blocked.test'],
  directory: new ListRecipientDirectory(['alice@example.test', 'bob@example.test']),
});

function brief(d: RecipientDecision): string {
  if (d.kind === 'accept') return `accept ${d.route}`;
  if (d.kind === 'directory') return `directory ${d.accept ? 'accept' : 'reject'} ${reply(d.reply, d.vars).code}`;
  return d.reply;
}

test('the rows of the table, in order', async () => {
  const rows: [Mailbox, boolean, string][] = [
    [POSTMASTER, false, 'accept postmaster'],
    [box('postmaster', 'example.test'), false, 'accept postmaster'],
    [box('POSTMASTER', 'Example.Test.'), false, 'accept postmaster'],
    [box('postmaster', 'elsewhere.test'), false, 'rcpt.relay-denied'],
    [box('blocked', 'example.test'), false, 'rcpt.blocked'],
    [box('Blocked', 'EXAMPLE.TEST'), true, 'rcpt.blocked'],
    [box('anyone', 'blocked.test'), true, 'rcpt.blocked'],
    [box('alice', 'example.test'), false, 'accept local'],
    [box('Alice', 'EXAMPLE.test.'), false, 'accept local'],
    [box('"alice"', 'example.test'), false, 'accept local'],
    [box('carol', 'example.test'), false, 'rcpt.unknown-user'],
    [box('carol', 'example.test'), true, 'rcpt.unknown-user'],
    [box('anyone', 'partner.test'), false, 'accept relay-domain'],
    [box('anyone', 'PARTNER.test.'), false, 'accept relay-domain'],
    [box('anyone', 'elsewhere.test'), false, 'rcpt.relay-denied'],
    [box('anyone', 'elsewhere.test'), true, 'accept relay'],
    [box('anyone', '[192.0.2.1]'), false, 'rcpt.relay-denied'],
  ];
  for (const [m, mayRelay, expected] of rows) {
    assert.equal(brief(await table.decide(m, mayRelay)), expected, `${m.localPart}@${m.domain} (relay: ${mayRelay})`);
  }
});

/** Local part × domain spellings that must never relay for a non-relay client. */
const TRICK_LOCAL_PARTS = [
  'user%elsewhere.test',
  'alice%elsewhere.test',
  '"user@elsewhere.test"',
  '"alice@elsewhere.test"',
  '"user%elsewhere.test"',
  '"user\\@elsewhere.test"',
  'elsewhere.test!user',
  'elsewhere.test!alice',
  '"elsewhere.test!user"',
];
const OUR_DOMAINS = ['example.test', 'EXAMPLE.TEST', 'Example.Test.', 'example.test..', 'partner.test', 'PARTNER.TEST.'];

test('relay tricks: none is accepted from a client that may not relay', async () => {
  for (const local of TRICK_LOCAL_PARTS) {
    for (const domain of OUR_DOMAINS) {
      const d = await table.decide(box(local, domain), false);
      assert.equal(brief(d), 'rcpt.relay-denied', `${local}@${domain}`);
    }
  }
  // A source route is dropped by the grammar: <@example.test:user@elsewhere.test> is user@elsewhere.test.
  for (const domain of ['elsewhere.test', 'ELSEWHERE.TEST', 'elsewhere.test.']) {
    assert.equal(brief(await table.decide(box('user', domain), false)), 'rcpt.relay-denied', domain);
  }
});

test('the same addresses from a relaying client are ordinary local or relay-domain recipients', async () => {
  assert.equal(brief(await table.decide(box('user%elsewhere.test', 'example.test'), true)), 'rcpt.unknown-user');
  assert.equal(brief(await table.decide(box('"user@elsewhere.test"', 'partner.test'), true)), 'accept relay-domain');
});

test('a directory that fails temporarily: 451 4.4.3 (rcpt.lookup-tempfail); it is asked with the domain normalized, the local part as on the wire', async () => {
  const asked: string[] = [];
  const t = new RecipientAccessTable({
    localDomains: ['example.test'], relayDomains: [], blocked: [],
    directory: { lookup: (a: string): RecipientLookup => (asked.push(a), 'temporary') },
  });
  assert.equal(brief(await t.decide(box('"Alice"', 'EXAMPLE.test.'), false)), 'rcpt.lookup-tempfail');
  assert.deepEqual(asked, ['"Alice"@example.test']);
});

test("a directory's own verdict (disabled, forwarded…) passes through; it gets the declared SIZE", async () => {
  const asked: [string, number | null][] = [];
  const t = new RecipientAccessTable({
    localDomains: ['example.test'], relayDomains: [], blocked: [],
    directory: {
      lookup: (a: string, size: number | null): RecipientLookup => {
        asked.push([a, size]);
        return a.startsWith('off@')
          ? { accept: false, reply: 'rcpt.mailbox-disabled', why: 'mailbox disabled' }
          : { accept: true, reply: 'rcpt.forward', vars: { address: 'new@elsewhere.test' }, forwardTo: ['new@elsewhere.test'], why: 'forwarded' };
      },
    },
  });
  assert.equal(brief(await t.decide(box('off', 'example.test'), false, 1234)), 'directory reject 550');
  assert.equal(brief(await t.decide(box('moved', 'example.test'), false)), 'directory accept 251');
  assert.deepEqual(asked, [['off@example.test', 1234], ['moved@example.test', null]]);
});

test('a forward or alias to an address on the block list is refused, 550 5.7.1 (rcpt.blocked); our own forward needs no relay permission', async () => {
  const answers: Record<string, RecipientLookup> = {
    'moved@example.test': { accept: true, reply: 'rcpt.forward', vars: { address: 'x@Blocked.Test' }, forwardTo: ['x@Blocked.Test'], why: 'forwarded' },
    'team@example.test': { accept: true, reply: 'rcpt.ok', vars: { address: 'team@example.test' }, forwardTo: ['ok@partner.test', '<"blocked"@example.test>'], why: 'an alias' },
    'fine@example.test': { accept: true, reply: 'rcpt.forward', vars: { address: 'new@elsewhere.test' }, forwardTo: ['new@elsewhere.test'], why: 'forwarded' },
    // A refusal stays what the directory said, whatever its targets.
    'gone@example.test': { accept: false, reply: 'rcpt.refer', vars: { address: 'x@blocked.test' }, forwardTo: ['x@blocked.test'], why: 'referred' },
  };
  const t = new RecipientAccessTable({
    localDomains: ['example.test'], relayDomains: [], blocked: ['blocked@example.test', '@blocked.test'],
    directory: { lookup: (a: string): RecipientLookup => answers[a] ?? 'unknown' },
  });
  const blocked = await t.decide(box('moved', 'example.test'), false);
  assert.equal(brief(blocked), 'rcpt.blocked');
  assert.match(blocked.why, /x@Blocked\.Test is on the recipient block list \(@blocked\.test\)/);
  assert.equal(brief(await t.decide(box('team', 'example.test'), false)), 'rcpt.blocked');
  assert.equal(brief(await t.decide(box('fine', 'example.test'), false)), 'directory accept 251');
  assert.equal(brief(await t.decide(box('gone', 'example.test'), false)), 'directory reject 551');
});

test('helpers: domains and local parts as compared', () => {
  assert.equal(normalizeDomain('Example.TEST.'), 'example.test');
  assert.equal(normalizeDomain('BÜCHER.test'), 'xn--bcher-kva.test');
  assert.equal(normalizeDomain('[IPv6:::1]'), '[ipv6:::1]');
  assert.equal(unquoteLocalPart('"a\\"b c"'), 'a"b c');
  assert.equal(unquoteLocalPart('plain'), 'plain');
  const list = new AddressList(['x@example.test', '@whole.test']);
  assert.equal(list.match('X', 'example.test'), 'x@example.test');
  assert.equal(list.match('anyone', 'whole.test'), '@whole.test');
  assert.equal(list.match('anyone', 'sub.whole.test'), null);
  const dir = new ListRecipientDirectory(['@catchall.test', 'one@example.test']);
  assert.equal(dir.lookup('whoever@catchall.test'), 'exists');
  assert.equal(dir.lookup('ONE@example.test'), 'exists');
  assert.equal(dir.lookup('two@example.test'), 'unknown');
  assert.equal(dir.lookup('"one"@example.test'), 'exists');
});

/**
 * The host access table against a DNS server on loopback (through the real resolver): IP and
 * CIDR matchers for IPv4 and IPv6, rDNS names (exact, .suffix, regex; forward-confirmed only),
 * DNSBL zones (IPv4 and IPv6 query names), first match wins, and DNS that hangs costs one
 * timeout for the whole walk, not one per matcher.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { SenderGroupConfig } from '../../src/config/policy-schema.js';
import { senderGroupsSchema } from '../../src/config/policy-schema.js';
import { ClientDnsFacts } from '../../src/policy/client-dns-facts.js';
import { canonicalIp, dnsblQueryName } from '../../src/policy/ip-address.js';
import { compileSenderGroups, matchSenderGroup, rdnsPatternTest } from '../../src/policy/sender-group-matcher.js';
import { LoopbackDnsServer } from '../support/loopback-dns-server.js';
import { DNS_TIMEOUT_MS, POLICY_ZONE, resolverFor } from './support/policy-fixtures.js';

let dns: LoopbackDnsServer;
before(async () => {
  dns = await new LoopbackDnsServer({
    ...POLICY_ZONE,
    records: [
      ...POLICY_ZONE.records,
      { name: dnsblQueryName('2001:db8::1', 'bl.test'), type: 'A', value: '127.0.0.2' },
    ],
    hang: [...(POLICY_ZONE.hang ?? []), 'bl-slow2.test'],
  }).start();
});
after(async () => {
  await dns.stop();
});

function groups(yamlish: unknown[]): SenderGroupConfig[] {
  return senderGroupsSchema.parse(yamlish);
}

async function groupOf(gs: SenderGroupConfig[], ip: string): Promise<string | null> {
  const m = await matchSenderGroup(compileSenderGroups(gs), ip, new ClientDnsFacts(ip, resolverFor(dns)));
  return m.group?.name ?? null;
}

test('reversed query names: IPv4 octets, IPv6 nibbles (RFC 5782 §2.1, §2.4)', () => {
  assert.equal(dnsblQueryName('192.0.2.99', 'bl.test'), '99.2.0.192.bl.test');
  assert.equal(dnsblQueryName('::ffff:192.0.2.99', 'bl.test'), '99.2.0.192.bl.test');
  assert.equal(
    dnsblQueryName('2001:db8::1', 'bl.test'),
    '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test',
  );
  assert.equal(canonicalIp('::1'), '0000:0000:0000:0000:0000:0000:0000:0001');
  assert.equal(canonicalIp('::FFFF:10.1.2.3'), '10.1.2.3');
});

test('rDNS patterns: exact, .suffix (names below it only), /regex/ (any case)', () => {
  const table: [string, string, boolean][] = [
    ['mail.example.test', 'mail.example.test', true],
    ['mail.example.test', 'MAIL.Example.TEST', true],
    ['mail.example.test', 'x.mail.example.test', false],
    ['.example.test', 'mail.example.test', true],
    ['.example.test', 'a.b.example.test', true],
    ['.example.test', 'example.test', false],
    ['.example.test', 'badexample.test', false],
    ['/^mx\\d+\\.example\\.test$/', 'MX12.example.test', true],
    ['/^mx\\d+\\.example\\.test$/', 'mxa.example.test', false],
  ];
  for (const [pattern, name, expected] of table) assert.equal(rdnsPatternTest(pattern)(name), expected, `${pattern} ~ ${name}`);
});

test('IP and CIDR matchers, IPv4 and IPv6; first match wins', async () => {
  const gs = groups([
    { name: 'ONE', match: [{ ip: '192.0.2.1' }], policy: 'BLOCKED' },
    { name: 'NET', match: [{ ip: ['192.0.2.0/24', '2001:db8::/32'] }], policy: 'THROTTLED' },
    { name: 'SIX', match: [{ ip: '::1' }], policy: 'RELAYED' },
    { name: 'ALL', match: ['all'], policy: 'ACCEPTED' },
  ]);
  assert.equal(await groupOf(gs, '192.0.2.1'), 'ONE');
  assert.equal(await groupOf(gs, '192.0.2.200'), 'NET');
  assert.equal(await groupOf(gs, '2001:db8:ffff::25'), 'NET');
  assert.equal(await groupOf(gs, '::1'), 'SIX');
  assert.equal(await groupOf(gs, '198.51.100.1'), 'ALL');
  assert.equal(await groupOf(gs.slice(0, 3), '198.51.100.1'), null, 'no group: null');
});

test('rDNS matchers count forward-confirmed names only', async () => {
  const gs = groups([
    { name: 'EXACT', match: [{ rdns: 'good.example.test' }], policy: 'TRUSTED' },
    { name: 'SUFFIX', match: [{ rdns: '.throttle.test' }], policy: 'THROTTLED' },
    { name: 'REGEX', match: [{ rdns: '/^mx\\d+\\.regex\\.test$/' }], policy: 'ACCEPTED' },
    { name: 'LIAR', match: [{ rdns: 'liar.example.test' }], policy: 'ACCEPTED' },
    { name: 'SIX', match: [{ rdns: 'six.example.test' }], policy: 'ACCEPTED' },
  ]);
  assert.equal(await groupOf(gs, '127.0.0.10'), 'EXACT');
  assert.equal(await groupOf(gs, '127.0.0.30'), 'SUFFIX');
  assert.equal(await groupOf(gs, '127.0.0.31'), 'REGEX');
  assert.equal(await groupOf(gs, '127.0.0.11'), null, 'a PTR name that does not lead back is no name');
  assert.equal(await groupOf(gs, '127.0.0.12'), null, 'no PTR');
  assert.equal(await groupOf(gs, '127.0.0.13'), null, 'SERVFAIL');
  assert.equal(await groupOf(gs, '::1'), 'SIX', 'IPv6: PTR under ip6.arpa, confirmed by AAAA');
});

test('DNSBL matchers: a listing (127.0.0.x) in any zone; IPv6 nibbles; NXDOMAIN, other answers and failures are no listing', async () => {
  const gs = groups([
    { name: 'LISTED', match: [{ dnsbl: ['bl.test', 'bl2.test'] }], policy: 'BLOCKED' },
    { name: 'ALL', match: ['all'], policy: 'ACCEPTED' },
  ]);
  assert.equal(await groupOf(gs, '127.0.0.20'), 'LISTED');
  assert.equal(await groupOf(gs, '127.0.0.21'), 'LISTED');
  assert.equal(await groupOf(gs, '2001:db8::1'), 'LISTED');
  assert.equal(await groupOf(gs, '127.0.0.22'), 'ALL', 'an answer outside 127.0.0.x');
  assert.equal(await groupOf(gs, '127.0.0.10'), 'ALL');
  const broken = groups([{ name: 'LISTED', match: [{ dnsbl: 'bl-broken.test' }], policy: 'BLOCKED' }, { name: 'ALL', match: ['all'], policy: 'ACCEPTED' }]);
  assert.equal(await groupOf(broken, '127.0.0.20'), 'ALL', 'a failing DNSBL lists nobody');
});

test('the walk asks each DNS fact once, and DNS that hangs costs one timeout for all matchers together', async () => {
  // Three hanging lookups: one after another they would take three timeouts.
  const gs = groups([
    { name: 'IP', match: [{ ip: '192.0.2.0/24' }], policy: 'TRUSTED' },
    { name: 'BL1', match: [{ dnsbl: 'bl-slow.test' }], policy: 'BLOCKED' },
    { name: 'NAME', match: [{ rdns: '.example.test' }], policy: 'TRUSTED' },
    { name: 'BL2', match: [{ dnsbl: ['bl-slow.test', 'bl-slow2.test'] }], policy: 'BLOCKED' },
    { name: 'NAME2', match: [{ rdns: 'good.example.test' }], policy: 'TRUSTED' },
    { name: 'ALL', match: ['all'], policy: 'ACCEPTED' },
  ]);
  const before = dns.queries.length;
  const t0 = Date.now();
  const m = await matchSenderGroup(compileSenderGroups(gs), '127.0.0.14', new ClientDnsFacts('127.0.0.14', resolverFor(dns)));
  const took = Date.now() - t0;
  assert.equal(m.group?.name, 'ALL');
  assert.ok(took < DNS_TIMEOUT_MS * 2.25, `took ${took} ms; one DNS timeout is ${DNS_TIMEOUT_MS} ms, three would be ${3 * DNS_TIMEOUT_MS}`);
  const asked = dns.queries.slice(before);
  // c-ares may retry a query that got no answer; each name is asked, and no other.
  assert.deepEqual([...new Set(asked)].sort(), ['A 14.0.0.127.bl-slow.test', 'A 14.0.0.127.bl-slow2.test', 'PTR 14.0.0.127.in-addr.arpa']);
  assert.deepEqual(m.trials.map((t) => `${t.group}: ${t.outcome}`), [
    'IP: no match',
    'BL1: no match (bl-slow.test failed temporarily, taken as not listed)',
    'NAME: no match (DNS failed temporarily)',
    'BL2: no match (bl-slow.test failed temporarily, taken as not listed; bl-slow2.test failed temporarily, taken as not listed)',
    'NAME2: no match (DNS failed temporarily)',
    'ALL: match',
  ]);
});

test('a client matched by IP costs no DNS lookup', async () => {
  const gs = groups([
    { name: 'IP', match: [{ ip: '127.0.0.0/8' }], policy: 'RELAYED' },
    { name: 'BL', match: [{ dnsbl: 'bl.test' }], policy: 'BLOCKED' },
  ]);
  const before = dns.queries.length;
  assert.equal(await groupOf(gs, '127.0.0.20'), 'IP');
  assert.equal(dns.queries.length, before);
});

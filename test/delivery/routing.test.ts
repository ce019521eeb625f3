/**
 * Routing and MX lookup through the real resolver against a loopback DNS server; the delivery
 * config section; the plain Maildir transport.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DnsResolver } from '../../src/dns/dns-resolver.js';
import { lookupMx, orderMx } from '../../src/delivery/mx-lookup.js';
import { Router } from '../../src/delivery/router.js';
import { MaildirDeliverer, maildirSegment } from '../../src/delivery/maildir-deliverer.js';
import { clientTimeouts } from '../../src/delivery/delivery-service.js';
import { parseConfigText } from '../../src/config/load-config.js';
import { LoopbackDnsServer } from '../support/loopback-dns-server.js';

let dns: LoopbackDnsServer;
let resolver: DnsResolver;
before(async () => {
  dns = await new LoopbackDnsServer({
    records: [
      { name: 'multi.test', type: 'MX', value: 'c.multi.test', priority: 20 },
      { name: 'multi.test', type: 'MX', value: 'a.multi.test', priority: 10 },
      { name: 'multi.test', type: 'MX', value: 'b.multi.test', priority: 10 },
      { name: 'a.multi.test', type: 'A', value: '127.0.0.2' },
      { name: 'b.multi.test', type: 'A', value: '127.0.0.3' },
      { name: 'b.multi.test', type: 'AAAA', value: '::1' },
      { name: 'c.multi.test', type: 'A', value: '127.0.0.4' },
      { name: 'implicit.test', type: 'A', value: '127.0.0.5' },
      { name: 'nomail.test', type: 'MX', value: '.', priority: 0 },
      { name: 'dangling.test', type: 'MX', value: 'nohost.dangling.test', priority: 10 },
      { name: 'dangling.test', type: 'TXT', value: 'x' },
      { name: 'half.test', type: 'MX', value: 'gone.half.test', priority: 10 },
      { name: 'half.test', type: 'MX', value: 'mx.broken.test', priority: 20 },
      { name: 'bare.test', type: 'TXT', value: 'no mx, no a' },
    ],
    servfail: ['broken.test'],
  }).start();
  resolver = new DnsResolver({ servers: [dns.address], timeoutMs: 2000 });
});
after(async () => {
  await dns.stop();
});

test('MX: preference order, equal preferences shuffled by the injected randomness, A then AAAA per host', { timeout: 10_000 }, async () => {
  const first = await lookupMx('multi.test', resolver, () => 0);
  assert.ok(first.ok);
  assert.deepEqual(first.hosts.map((h) => [h.name, h.preference, h.addresses]), [
    ['b.multi.test', 10, ['127.0.0.3', '::1']], ['a.multi.test', 10, ['127.0.0.2']], ['c.multi.test', 20, ['127.0.0.4']],
  ]);
  const other = await lookupMx('multi.test', resolver, () => 0.99);
  assert.ok(other.ok);
  assert.deepEqual(other.hosts.map((h) => h.name), ['a.multi.test', 'b.multi.test', 'c.multi.test']);
});

test('MX: implicit MX, null MX, NXDOMAIN, no records, hosts without addresses, SERVFAIL', { timeout: 10_000 }, async () => {
  const implicit = await lookupMx('implicit.test', resolver);
  assert.ok(implicit.ok && implicit.implicit);
  assert.deepEqual(implicit.hosts.map((h) => [h.name, h.addresses]), [['implicit.test', ['127.0.0.5']]]);
  const kind = async (d: string): Promise<string> => {
    const r = await lookupMx(d, resolver);
    return r.ok ? 'ok' : r.fact.kind === 'dns' ? r.fact.failure : r.fact.kind;
  };
  assert.equal(await kind('nomail.test'), 'null-mx');
  assert.equal(await kind('nowhere.test'), 'nxdomain');
  assert.equal(await kind('bare.test'), 'no-address');
  assert.equal(await kind('dangling.test'), 'mx-hosts-unresolvable');
  assert.equal(await kind('x.broken.test'), 'temporary');
  assert.equal(await kind('half.test'), 'temporary', 'one host missing, the other unknown for now: try later');
});

test('orderMx keeps preference order for any randomness', () => {
  const records = [30, 10, 20, 10, 30, 10].map((priority, i) => ({ exchange: `h${i}`, priority }));
  for (const r of [0, 0.3, 0.7, 0.999]) {
    assert.deepEqual(orderMx(records, () => r).map((m) => m.priority), [10, 10, 10, 20, 30, 30]);
  }
});

test('router: local, relay (static route), address literal, MX, Postmaster', () => {
  const config = parseConfigText('domains: { local: [Example.TEST], relay: { partner.test: { next_hop: "lmtp://127.0.0.7:24", tls: required } } }', 't.yaml', { baseDir: '/tmp' });
  const router = new Router({ localDomains: config.domains.local, relay: config.domains.relay, postmaster: 'hostmaster@example.test' });
  assert.deepEqual(router.route('a@example.TEST').route, { kind: 'local', domain: 'example.test' });
  const relay = router.route('b@Partner.test');
  assert.equal(relay.route.kind, 'relay');
  assert.ok(relay.route.kind === 'relay' && relay.route.nextHop.protocol === 'lmtp' && relay.route.nextHop.tls === 'required' && relay.route.nextHop.port === 24);
  assert.deepEqual(router.route('c@[127.0.0.9]').route, { kind: 'literal', domain: '[127.0.0.9]', ip: '127.0.0.9' });
  assert.deepEqual(router.route('d@far.test').route, { kind: 'mx', domain: 'far.test' });
  assert.equal(router.route('d@far.test').key, router.route('e@FAR.test').key, 'one domain, one group');
  const pm = router.route('Postmaster');
  assert.deepEqual([pm.address, pm.route.kind], ['hostmaster@example.test', 'local']);
  const own = new Router({ localDomains: [], relay: {}, postmaster: 'postmaster@mx.example.test', hostname: 'mx.example.test' });
  assert.equal(own.route('postmaster@MX.example.test').route.kind, 'local', 'mail to our own host name is ours');
  assert.equal(own.route('Postmaster').address, 'postmaster@mx.example.test');
});

test('config: delivery defaults, overrides and errors that name the path', () => {
  const d = parseConfigText('', 't.yaml', { baseDir: '/tmp' });
  assert.equal(d.delivery.smtp_port, 25);
  assert.equal(d.delivery.concurrency, 20);
  assert.equal(d.delivery.lease_time, 300_000);
  assert.equal(d.soft_bounce, false);
  assert.equal(d.postmaster, undefined);
  assert.deepEqual(clientTimeouts(d.delivery.timeouts), {
    connect: 30_000, greeting: 300_000, helo: 300_000, starttls: 300_000, mail: 300_000, rcpt: 300_000,
    'data-init': 120_000, 'data-block': 180_000, 'data-term': 600_000, rset: 20_000, quit: 300_000,
  });
  const c = parseConfigText('delivery: { smtp_port: 2525, helo_name: out.example.test, timeouts: { data_term: 1m } }\npostmaster: pm@example.test\nsoft_bounce: true', 't.yaml', { baseDir: '/tmp' });
  assert.equal(c.delivery.smtp_port, 2525);
  assert.equal(c.delivery.helo_name, 'out.example.test');
  assert.equal(c.delivery.timeouts.data_term, 60_000);
  assert.equal(c.postmaster, 'pm@example.test');
  assert.equal(c.soft_bounce, true);
  assert.throws(() => parseConfigText('delivery: { smtp_port: 0 }', 't.yaml'), /delivery\.smtp_port/);
  assert.throws(() => parseConfigText('delivery: { concurency: 5 }', 't.yaml'), /delivery\.concurency: unknown key; did you mean "concurrency"/);
  assert.throws(() => parseConfigText('postmaster: "not an address"', 't.yaml'), /postmaster: expected a mail address/);
  assert.throws(() => parseConfigText('delivery: { tls: sometimes }', 't.yaml'), /delivery\.tls/);
});

test('Maildir: <root>/<domain>/<local>/new, Return-Path and Delivered-To first, tmp left empty; unsafe names escaped', { timeout: 10_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'postern-maildir-'));
  try {
    const m = new MaildirDeliverer({ root, hostname: 'mx.test' });
    const body = async function* (): AsyncGenerator<Buffer> {
      yield Buffer.from('Subject: x\r\n\r\n');
      yield Buffer.from('body\r\n');
    };
    const fact = await m.deliver({ queueId: 'Q1', sender: 'a@src.test', recipient: 'Bob@Example.TEST', body });
    assert.equal(fact.kind, 'local-delivered');
    const dir = join(root, 'example.test', 'bob');
    const files = readdirSync(join(dir, 'new'));
    assert.equal(files.length, 1);
    assert.match(files[0], /^\d+\.M\d+P\d+Q1\.mx\.test,S=\d+$/);
    const content = readFileSync(join(dir, 'new', files[0]), 'utf8');
    assert.equal(content, 'Return-Path: <a@src.test>\r\nDelivered-To: Bob@Example.TEST\r\nSubject: x\r\n\r\nbody\r\n');
    assert.equal(Number(/S=(\d+)$/.exec(files[0])![1]), statSync(join(dir, 'new', files[0])).size);
    assert.deepEqual(readdirSync(join(dir, 'tmp')), []);
    assert.deepEqual(readdirSync(join(dir, 'cur')), []);
    assert.equal(maildirSegment('../../etc'), '%2E.%2F..%2Fetc');
    assert.equal(maildirSegment('"a b"/c'), '%22a%20b%22%2Fc');
    assert.equal(maildirSegment('j\u00f6rg'), 'j%C3%B6rg');
    const bad = await m.deliver({ queueId: 'Q2', sender: '', recipient: 'nodomain', body });
    assert.deepEqual(bad.kind, 'local-failure');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/** The resolver against a real DNS server on loopback: answers, NXDOMAIN vs NODATA vs SERVFAIL, timeouts. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DnsResolver } from '../../src/dns/dns-resolver.js';
import { LoopbackDnsServer, reverseName } from '../support/loopback-dns-server.js';

let dns: LoopbackDnsServer;
before(async () => {
  dns = await new LoopbackDnsServer({
    records: [
      { name: 'mx.example.test', type: 'A', value: '127.0.0.2' },
      { name: 'short.example.test', type: 'A', value: '127.0.0.9', ttl: 5 },
      { name: 'mx.example.test', type: 'AAAA', value: '::1' },
      { name: 'example.test', type: 'MX', value: 'mx.example.test', priority: 10 },
      { name: 'example.test', type: 'MX', value: 'mx2.example.test', priority: 20 },
      { name: 'example.test', type: 'TXT', value: 'v=spf1 ip4:127.0.0.0/8 -all' },
      { name: reverseName('127.0.0.2'), type: 'PTR', value: 'mx.example.test' },
      { name: reverseName('::1'), type: 'PTR', value: 'six.example.test' },
    ],
    servfail: ['broken.test'],
    hang: ['slow.test'],
  }).start();
});
after(async () => {
  await dns.stop();
});

function resolver(timeoutMs = 2000): DnsResolver {
  return new DnsResolver({ servers: [dns.address], timeoutMs });
}

test('records come back as asked', { timeout: 10_000 }, async () => {
  const r = resolver();
  assert.deepEqual(await r.a('mx.example.test'), { ok: true, records: ['127.0.0.2'] });
  assert.deepEqual(await r.aaaa('mx.example.test'), { ok: true, records: ['::1'] });
  const mx = await r.mx('example.test');
  assert.ok(mx.ok);
  assert.deepEqual([...mx.records].sort((a, b) => a.priority - b.priority), [
    { exchange: 'mx.example.test', priority: 10 }, { exchange: 'mx2.example.test', priority: 20 }]);
  assert.deepEqual(await r.txt('example.test'), { ok: true, records: ['v=spf1 ip4:127.0.0.0/8 -all'] });
  assert.deepEqual(await r.ptr('127.0.0.2'), { ok: true, records: ['mx.example.test'] });
  assert.deepEqual(await r.ptr('::1'), { ok: true, records: ['six.example.test'] });
});

test('NXDOMAIN, NODATA and SERVFAIL stay apart', { timeout: 10_000 }, async () => {
  const r = resolver();
  assert.equal((await r.a('nowhere.test') as { kind: string }).kind, 'nxdomain');
  assert.equal((await r.mx('mx.example.test') as { kind: string }).kind, 'nodata');
  assert.equal((await r.a('www.broken.test') as { kind: string }).kind, 'temporary');
});

test('a lookup that hangs ends at the timeout as a temporary failure', { timeout: 10_000 }, async () => {
  const r = resolver(300);
  const t0 = Date.now();
  const a = await r.a('x.slow.test');
  const took = Date.now() - t0;
  assert.equal((a as { kind: string }).kind, 'temporary');
  assert.ok(took >= 250 && took < 1500, `took ${took} ms`);
});

test('the cache keeps answers no longer than their TTL (A/AAAA) and never keeps temporary failures', { timeout: 10_000 }, async () => {
  let now = 1_000_000;
  const r = new DnsResolver({ servers: [dns.address], timeoutMs: 2000, cacheMs: 60_000, clock: () => now });
  const asked = (q: string): number => dns.queries.filter((x) => x === q).length;
  const before = asked('A short.example.test');
  assert.deepEqual(await r.a('short.example.test'), { ok: true, records: ['127.0.0.9'] });
  now += 1000;
  await r.a('short.example.test');
  assert.equal(asked('A short.example.test'), before + 1, 'cached within its 5 s TTL');
  now += 5000;
  await r.a('short.example.test');
  assert.equal(asked('A short.example.test'), before + 2, 'asked again once the TTL ran out');
  const mxBefore = asked('MX example.test');
  await r.mx('example.test');
  now += 30_000;
  await r.mx('example.test');
  assert.equal(asked('MX example.test'), mxBefore + 1, 'other types: kept for cache_ttl');
  const failBefore = asked('A www.broken.test');
  await r.a('www.broken.test');
  await r.a('www.broken.test');
  assert.ok(asked('A www.broken.test') >= failBefore + 2, 'SERVFAIL is not cached');
});

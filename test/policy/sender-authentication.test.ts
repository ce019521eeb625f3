/**
 * The parts of sender authentication that need no sockets: the decision table (what each outcome
 * gets under each setting), the resolver adapter (answers and error codes as mailauth expects
 * them, temporary failures kept apart), and the header (no line breaks from outside).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SENDER_AUTH_DEFAULTS, type SenderAuthSettings } from '../../src/config/sender-auth-schema.js';
import {
  addressOfReverseName, authenticationResultsHeader, decideSenderAuth, mailauthResolver,
  type DmarcOutcome, type SenderAuthDns, type SenderAuthResults,
} from '../../src/policy/sender-authentication.js';
import type { DnsAnswer } from '../../src/policy/facts.js';

function results(over: { spf?: string; dkim?: string[]; dmarc?: Partial<DmarcOutcome>[] } = {}): SenderAuthResults {
  return {
    spf: { result: (over.spf ?? 'none') as never, domain: 'env.test', info: `spf=${over.spf ?? 'none'}` },
    dkim: (over.dkim ?? ['none']).map((r) => ({ result: r as never, domain: 'from.test', comment: null, info: `dkim=${r}` })),
    arc: null,
    dmarc: (over.dmarc ?? []).map((d) => ({ result: 'fail', domain: 'from.test', policy: 'reject', pct: null, info: 'dmarc=fail', ...d })),
  };
}
const settings = (over: Partial<SenderAuthSettings> = {}): SenderAuthSettings => ({ ...SENDER_AUTH_DEFAULTS, ...over });
const brief = (d: ReturnType<typeof decideSenderAuth>): string => (d.kind === 'reject' ? d.reply : d.hold ? 'hold' : 'accept');

test('the decision table', () => {
  const rows: [string, SenderAuthResults, Partial<SenderAuthSettings>, string][] = [
    ['SPF pass', results({ spf: 'pass' }), {}, 'accept'],
    ['SPF fail, default reject', results({ spf: 'fail' }), {}, 'data.spf-fail'],
    ['SPF fail, accept', results({ spf: 'fail' }), { spf_fail: 'accept' }, 'accept'],
    ['SPF fail but DMARC passes', results({ spf: 'fail', dkim: ['pass'], dmarc: [{ result: 'pass' }] }), {}, 'accept'],
    ['SPF softfail, default accept', results({ spf: 'softfail' }), {}, 'accept'],
    ['SPF softfail, reject', results({ spf: 'softfail' }), { spf_softfail: 'reject' }, 'data.spf-fail'],
    ['SPF temperror, default accept', results({ spf: 'temperror' }), {}, 'accept'],
    ['SPF temperror, defer', results({ spf: 'temperror' }), { spf_temperror: 'defer' }, 'data.spf-temperror'],
    ['DMARC p=reject fail', results({ spf: 'pass', dmarc: [{}] }), {}, 'data.content-rejected'],
    ['DMARC p=reject fail, quarantine', results({ spf: 'pass', dmarc: [{}] }), { dmarc_reject: 'quarantine' }, 'hold'],
    ['DMARC p=reject fail, accept', results({ spf: 'pass', dmarc: [{}] }), { dmarc_reject: 'accept' }, 'accept'],
    ['DMARC p=quarantine fail', results({ spf: 'pass', dmarc: [{ policy: 'quarantine' }] }), {}, 'hold'],
    ['DMARC p=quarantine fail, reject', results({ spf: 'pass', dmarc: [{ policy: 'quarantine' }] }), { dmarc_quarantine: 'reject' }, 'data.content-rejected'],
    ['DMARC p=none fail', results({ spf: 'pass', dmarc: [{ policy: 'none' }] }), {}, 'accept'],
    // A fail with a DKIM lookup that failed temporarily is undecided, not a fail.
    ['DMARC fail + DKIM temperror, default accept', results({ spf: 'pass', dkim: ['temperror'], dmarc: [{}] }), {}, 'accept'],
    ['DMARC fail + DKIM temperror, defer', results({ spf: 'pass', dkim: ['temperror'], dmarc: [{}] }), { temperror: 'defer' }, 'data.content-tempfail'],
    ['DMARC temperror, defer', results({ dmarc: [{ result: 'temperror', policy: null }] }), { temperror: 'defer' }, 'data.content-tempfail'],
    ['DMARC temperror, accept', results({ dmarc: [{ result: 'temperror', policy: null }] }), {}, 'accept'],
    // Several From: domains: the strictest counts.
    ['two From: domains, one p=reject', results({ spf: 'pass', dmarc: [{ result: 'pass' }, { domain: 'b.test' }] }), {}, 'data.content-rejected'],
  ];
  for (const [what, r, s, expected] of rows) assert.equal(brief(decideSenderAuth(r, settings(s), () => 0)), expected, what);
});

test('DMARC pct: outside the sample, p=reject is applied as quarantine and p=quarantine not at all (RFC 7489 §6.6.4)', () => {
  const reject = results({ spf: 'pass', dmarc: [{ pct: 20 }] });
  assert.equal(brief(decideSenderAuth(reject, settings(), () => 0.1)), 'data.content-rejected');
  assert.equal(brief(decideSenderAuth(reject, settings(), () => 0.5)), 'hold');
  const quarantine = results({ spf: 'pass', dmarc: [{ pct: 20, policy: 'quarantine' }] });
  assert.equal(brief(decideSenderAuth(quarantine, settings(), () => 0.5)), 'accept');
});

test('the resolver adapter: shapes and error codes mailauth expects; temporary failures stay temporary', async () => {
  const answers: Record<string, DnsAnswer<unknown>> = {
    'TXT t.test': { ok: true, records: ['v=spf1 -all'] },
    'MX m.test': { ok: true, records: [{ exchange: 'mx.m.test', priority: 5 }] },
    'A nx.test': { ok: false, kind: 'nxdomain', error: 'ENOTFOUND' },
    'A nodata.test': { ok: false, kind: 'nodata', error: 'ENODATA' },
    'TXT broken.test': { ok: false, kind: 'temporary', error: 'timeout' },
    'PTR 192.0.2.1': { ok: true, records: ['host.test'] },
    'PTR 2001:0db8:0000:0000:0000:0000:0000:0001': { ok: true, records: ['six.test'] },
  };
  const ask = (key: string): Promise<DnsAnswer<never>> => Promise.resolve((answers[key] ?? { ok: false, kind: 'nxdomain', error: 'x' }) as DnsAnswer<never>);
  const dns: SenderAuthDns = {
    a: (n) => ask(`A ${n}`), aaaa: (n) => ask(`AAAA ${n}`), mx: (n) => ask(`MX ${n}`), txt: (n) => ask(`TXT ${n}`),
    ptr: (ip) => (ip === '192.0.2.9' ? Promise.reject(new Error('boom')) : ask(`PTR ${ip}`)),
  };
  const resolve = mailauthResolver(dns);
  assert.deepEqual(await resolve('t.test', 'TXT'), [['v=spf1 -all']]);
  assert.deepEqual(await resolve('m.test', 'MX'), [{ exchange: 'mx.m.test', priority: 5 }]);
  assert.deepEqual(await resolve('1.2.0.192.in-addr.arpa', 'PTR'), ['host.test']);
  assert.deepEqual(await resolve(`1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa`, 'PTR'), ['six.test']);
  const code = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: { code?: string }) => e.code ?? '?');
  assert.equal(await code(resolve('nx.test', 'A')), 'ENOTFOUND');
  assert.equal(await code(resolve('nodata.test', 'A')), 'ENODATA');
  assert.equal(await code(resolve('broken.test', 'TXT')), 'ESERVFAIL');
  assert.equal(await code(resolve('x.test', 'SRV')), 'ENOTIMP');
  assert.equal(await code(resolve('9.2.0.192.in-addr.arpa', 'PTR')), 'ESERVFAIL', 'a resolver that throws is a temporary failure');
});

test('reverse-lookup names back to addresses', () => {
  assert.equal(addressOfReverseName('1.2.0.192.in-addr.arpa'), '192.0.2.1');
  assert.equal(addressOfReverseName('1.2.0.192.IN-ADDR.ARPA.'), '192.0.2.1');
  assert.equal(addressOfReverseName(`1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa`), '2001:0db8:0000:0000:0000:0000:0000:0001');
  assert.equal(addressOfReverseName('example.test'), null);
});

test('the header: authserv-id first, one method per line, no line breaks smuggled in', () => {
  const r = results({ spf: 'pass' });
  const evil = { ...r, spf: { ...r.spf, info: 'spf=pass smtp.mailfrom=a@b.test\r\nX-Injected: yes' } };
  const h = authenticationResultsHeader('mx.test', evil);
  assert.equal(h, 'Authentication-Results: mx.test;\r\n dkim=none;\r\n spf=pass smtp.mailfrom=a@b.test X-Injected: yes\r\n');
  assert.ok(h.split('\r\n').slice(1, -1).every((l) => l.startsWith(' ')), 'every continuation line is folded');
});

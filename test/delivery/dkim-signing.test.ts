/**
 * DKIM signing before delivery: a message delivered to a sink listener carries DKIM-Signature
 * headers (rsa-sha256 and ed25519-sha256) that mailauth verifies against the public keys
 * published on the loopback DNS server; the From: domain picks the keys (a subdomain uses its
 * parent's); other domains go unsigned; a key file that cannot be used stops the start.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { dkimVerify } from 'mailauth';
import { startWorld, DEFAULT_MESSAGE, T0 } from './harness.js';
import { makeDkimKey, type TestDkimKey } from '../support/dkim-keys.js';
import { DnsResolver } from '../../src/dns/dns-resolver.js';
import { mailauthResolver } from '../../src/policy/sender-authentication.js';
import { startTestGateway } from '../support/test-gateway.js';
import type { LoopbackDnsServer } from '../support/loopback-dns-server.js';

let rsa: TestDkimKey;
let ed: TestDkimKey;
before(() => {
  rsa = makeDkimKey('src.test', 'rsa2026', 'rsa');
  ed = makeDkimKey('src.test', 'ed2026', 'ed25519', dirname(rsa.file));
});
after(() => {
  rmSync(dirname(rsa.file), { recursive: true, force: true });
});

const DKIM_YAML = (): string => [
  'dkim:',
  '  sign:',
  `    - { domain: src.test, selector: rsa2026, key: ${JSON.stringify(rsa.file)} }`,
  `    - { domain: src.test, selector: ed2026, key: ${JSON.stringify(ed.file)} }`,
].join('\n');

/** mailauth's verdict on a delivered message, with keys from the world's DNS server (at the world's time). */
async function verify(dns: LoopbackDnsServer, body: Buffer): Promise<string[]> {
  const resolver = mailauthResolver(new DnsResolver({ servers: [dns.address], timeoutMs: 2000 }));
  const r = await dkimVerify(body, { resolver: resolver as never, curTime: new Date(T0 + 60_000) });
  return r.results.map((x) => `${x.status.result} d=${x.signingDomain} s=${x.selector} a=${String(x.status.header?.a)}`);
}

test('delivered mail carries DKIM signatures (rsa-sha256, ed25519-sha256) that verify against the published keys', { timeout: 30_000 }, async () => {
  const w = await startWorld({ sinks: [{}], records: [rsa.record, ed.record], yaml: DKIM_YAML() });
  try {
    await w.send(['b@dst.test']);
    await w.settle();
    assert.equal(w.sinks[0].messages.length, 1);
    const msg = w.sinks[0].messages[0];
    const text = msg.body.toString('utf8');
    assert.match(text, /^DKIM-Signature: /, 'the signature leads');
    assert.ok(text.endsWith(DEFAULT_MESSAGE), 'the body follows unchanged');
    assert.equal(Number(/SIZE=(\d+)/.exec(msg.mailParams)?.[1]), msg.body.length, 'SIZE counts the signature');
    assert.deepEqual((await verify(w.dns, msg.body)).sort(), [
      'pass d=src.test s=ed2026 a=ed25519-sha256',
      'pass d=src.test s=rsa2026 a=rsa-sha256',
    ]);
    // Changed on the way: the signature no longer verifies.
    const altered = Buffer.from(text.replace('Subject: delivery test', 'Subject: delivery TEST'));
    assert.ok((await verify(w.dns, altered)).every((r) => r.startsWith('fail')));
  } finally {
    await w.stop();
  }
});

test('keys by From: domain: a subdomain is signed with its parent\'s keys; another domain goes unsigned', { timeout: 30_000 }, async () => {
  const w = await startWorld({ sinks: [{}], records: [rsa.record, ed.record], yaml: DKIM_YAML() });
  try {
    await w.send(['b@dst.test'], { data: DEFAULT_MESSAGE.replace('From: Alice <a@src.test>', 'From: News <news@lists.src.test>') });
    await w.send(['b@dst.test'], { from: 'x@elsewhere.test', data: DEFAULT_MESSAGE.replace('From: Alice <a@src.test>', 'From: <x@elsewhere.test>') });
    await w.settle();
    const [sub, other] = w.sinks[0].messages;
    assert.deepEqual((await verify(w.dns, sub.body)).sort(), [
      'pass d=src.test s=ed2026 a=ed25519-sha256',
      'pass d=src.test s=rsa2026 a=rsa-sha256',
    ]);
    assert.doesNotMatch(other.body.toString('utf8'), /DKIM-Signature/);
  } finally {
    await w.stop();
  }
});

test('a key file that cannot be used stops the start, naming its config path', { timeout: 10_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-dkim-gw-'));
  try {
    await assert.rejects(
      startTestGateway(`dkim: { sign: [{ domain: src.test, selector: s, key: ${JSON.stringify(join(dirname(rsa.file), 'missing.pem'))} }] }`, { delivery: true, dir }),
      /dkim\.sign\[0\]\.key: .*missing\.pem/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

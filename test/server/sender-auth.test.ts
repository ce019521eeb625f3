/**
 * Sender authentication at the end of data over real sockets, against zone data on the loopback
 * DNS server: SPF pass / fail / softfail / temperror, DKIM pass / fail (a message signed by
 * Postern's own signer, then altered), DMARC reject, quarantine and tempfail — each with the
 * Authentication-Results header of the stored message asserted (authserv-id: our hostname).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { LoopbackDnsServer } from '../support/loopback-dns-server.js';
import { SmtpTestClient } from '../support/smtp-test-client.js';
import { startTestGateway, type TestGateway } from '../support/test-gateway.js';
import { makeDkimKey, type TestDkimKey } from '../support/dkim-keys.js';
import { dkimSign } from 'mailauth';
import { DkimSigner } from '../../src/delivery/dkim-signer.js';

let dns: LoopbackDnsServer;
let gw: TestGateway;
let rsa: TestDkimKey;
let ed: TestDkimKey;
let strangerKey: TestDkimKey;

before(async () => {
  rsa = makeDkimKey('signed.test', 'rsa1', 'rsa');
  ed = makeDkimKey('signed.test', 'ed1', 'ed25519', dirname(rsa.file));
  strangerKey = makeDkimKey('stranger.test', 'k1', 'rsa', dirname(rsa.file));
  dns = await new LoopbackDnsServer({
    records: [
      { name: 'spf-pass.test', type: 'TXT', value: 'v=spf1 ip4:127.0.0.0/8 -all' },
      { name: 'spf-fail.test', type: 'TXT', value: 'v=spf1 ip4:192.0.2.0/24 -all' },
      { name: 'spf-soft.test', type: 'TXT', value: 'v=spf1 ip4:192.0.2.0/24 ~all' },
      // signed.test: DKIM keys (RSA and Ed25519), no SPF for 127/8, DMARC p=reject
      { name: 'signed.test', type: 'TXT', value: 'v=spf1 ip4:192.0.2.0/24 -all' },
      rsa.record,
      ed.record,
      { name: '_dmarc.signed.test', type: 'TXT', value: 'v=DMARC1; p=reject' },
      // nodmarc.test: the same keys (a copy of the records), no DMARC record
      { ...rsa.record, name: 'rsa1._domainkey.nodmarc.test' },
      { name: 'nodmarc.test', type: 'TXT', value: 'v=spf1 ip4:127.0.0.0/8 ~all' },
      { name: '_dmarc.bank.test', type: 'TXT', value: 'v=DMARC1; p=reject; rua=mailto:d@bank.test' },
      { name: 'bank.test', type: 'MX', value: 'mx.bank.test', priority: 10 },
      { name: '_dmarc.shop.test', type: 'TXT', value: 'v=DMARC1; p=quarantine' },
      { name: 'shop.test', type: 'MX', value: 'mx.shop.test', priority: 10 },
      strangerKey.record,
    ],
    servfail: ['spf-temp.test', '_dmarc.dmarc-temp.test'],
  }).start();
  gw = await startTestGateway([
    `dns: { servers: ["${dns.address}"], cache_ttl: 0 }`,
    'timeouts: { dns: 400ms }',
    'domains: { local: [example.test] }',
    'recipients: { valid: [bob@example.test] }',
    'sender_groups:',
    '  - { name: STRICTS, match: [ip: 127.0.0.20], policy: STRICT }',
    '  - { name: INTERNAL, match: [ip: 127.0.0.30], policy: RELAYED }',
    '  - { name: ALL, match: [all], policy: ACCEPTED }',
    'policies: { STRICT: { action: accept } }',
    'sender_auth:',
    '  policies:',
    '    STRICT: { temperror: defer, spf_temperror: defer, spf_softfail: reject }',
  ].join('\n'));
});

after(async () => {
  await gw?.stop();
  await dns?.stop();
  if (rsa) rmSync(dirname(rsa.file), { recursive: true, force: true });
});

interface Sent {
  /** "code enhanced text" of the end-of-data reply. */
  readonly reply: string;
  /** The stored message, when it was queued. */
  readonly body: string | null;
  readonly state: string | null;
}

/** One message from `from` (a loopback address), envelope sender `sender`, the given data. */
async function send(sender: string, data: string, from = '127.0.0.1'): Promise<Sent> {
  const c = await SmtpTestClient.connect(gw.port, '127.0.0.1', from);
  try {
    assert.equal(await c.code(), '220');
    assert.equal(await c.cmd('EHLO client.test'), '250');
    assert.equal(await c.cmd(`MAIL FROM:<${sender}>`), '250 2.1.0');
    assert.equal(await c.cmd('RCPT TO:<bob@example.test>'), '250 2.1.5');
    assert.equal(await c.cmd('DATA'), '354');
    c.write(data);
    c.write('.\r\n');
    const r = await c.reply(15_000);
    const reply = r.raw.trimEnd().split('\r\n').pop()!;
    const id = /queued as (\S+)/.exec(reply)?.[1];
    return {
      reply,
      body: id ? gw.gateway.store.readBody(id).toString('utf8') : null,
      state: id ? gw.gateway.store.getMessage(id)!.state : null,
    };
  } finally {
    c.close();
  }
}

function message(from: string, subject = 'hello', body = 'Hello there.\r\n'): string {
  return [
    `From: Someone <${from}>`,
    'To: bob@example.test',
    `Subject: ${subject}`,
    'Date: Tue, 01 Jan 2030 00:00:00 +0000',
    `Message-ID: <${Math.random().toString(36).slice(2)}@${from.split('@')[1]}>`,
    '',
    body,
  ].join('\r\n');
}

/** The Authentication-Results header of a stored message, unfolded; asserts there is exactly one, at the top. */
function authResults(body: string | null): string {
  assert.ok(body !== null, 'the message was stored');
  assert.ok(body.startsWith('Authentication-Results: mx.test;'), `A-R first, with our authserv-id:\n${body.slice(0, 300)}`);
  assert.equal(body.match(/^Authentication-Results:/gim)?.length, 1);
  const m = /^Authentication-Results:.*(?:\r\n[ \t].*)*/m.exec(body)!;
  return m[0].replace(/\r\n[ \t]+/g, ' ');
}

async function signed(key: TestDkimKey | TestDkimKey[], text: string, sender: string): Promise<string> {
  const signer = new DkimSigner(Array.isArray(key) ? key : [key]);
  const sig = await signer.sign(async function* () { yield Buffer.from(text); }, sender);
  assert.match(sig, /^DKIM-Signature: /);
  return sig + text;
}

test('SPF pass, fail (550 5.7.23), softfail (accepted; 550 5.7.23 where the policy says so), temperror (accepted; 451 4.7.24 where the policy defers)', { timeout: 30_000 }, async () => {
  // A sender's own "results" in our name are dropped (RFC 8601 §5); another host's stay.
  const forged = 'Authentication-Results: mx.test; dmarc=pass header.from=spf-pass.test\r\nAuthentication-Results: other.test; spf=pass\r\n';
  const pass = await send('sender@spf-pass.test', forged + message('sender@spf-pass.test'));
  assert.match(pass.reply, /^250 2\.0\.0 /);
  assert.equal(pass.body!.match(/^Authentication-Results: mx\.test;/gim)?.length, 1, 'only ours');
  assert.match(pass.body!, /\r\nAuthentication-Results: other\.test; spf=pass\r\n/);
  const ar = authResults(pass.body!.replace('Authentication-Results: other.test; spf=pass\r\n', ''));
  assert.match(ar, /; spf=pass \(mx\.test: domain of sender@spf-pass\.test designates 127\.0\.0\.1 as permitted sender\) smtp\.mailfrom=sender@spf-pass\.test smtp\.helo=client\.test/);
  assert.match(ar, /dkim=none \(message not signed\)/);
  assert.match(ar, /dmarc=none header\.from=spf-pass\.test/);
  assert.ok(pass.body!.indexOf('\r\nReceived: from client.test') > 0, 'our Received header follows');

  assert.equal((await send('sender@spf-fail.test', message('sender@spf-fail.test'))).reply, '550 5.7.23 SPF validation failed');

  const soft = await send('sender@spf-soft.test', message('sender@spf-soft.test'));
  assert.match(soft.reply, /^250 /);
  assert.match(authResults(soft.body), /spf=softfail .*smtp\.mailfrom=sender@spf-soft\.test/);
  assert.equal((await send('sender@spf-soft.test', message('sender@spf-soft.test'), '127.0.0.20')).reply, '550 5.7.23 SPF validation failed');

  const temp = await send('sender@spf-temp.test', message('sender@spf-temp.test'));
  assert.match(temp.reply, /^250 /);
  assert.match(authResults(temp.body), /spf=temperror .*smtp\.mailfrom=sender@spf-temp\.test/);
  assert.equal((await send('sender@spf-temp.test', message('sender@spf-temp.test'), '127.0.0.20')).reply, '451 4.7.24 SPF validation error, try again later');
});

test('DKIM pass (rsa-sha256 and ed25519-sha256 from Postern\'s signer); altered after signing: fail', { timeout: 30_000 }, async () => {
  const text = message('alice@signed.test', 'signed');
  const good = await send('sender@spf-pass.test', await signed([rsa, ed], text, 'alice@signed.test'));
  assert.match(good.reply, /^250 /);
  const ar = authResults(good.body);
  assert.match(ar, /dkim=pass header\.i=@signed\.test header\.s=rsa1 header\.a=rsa-sha256 header\.b=\S+;/);
  assert.match(ar, /dkim=pass header\.i=@signed\.test header\.s=ed1 header\.a=ed25519-sha256 header\.b=\S+;/);
  assert.match(ar, /dmarc=pass \(p=REJECT arc=none\) header\.from=signed\.test/);

  // A signed header changed on the way: the signature no longer verifies. DMARC then fails (p=reject).
  const tampered = (await signed(rsa, text, 'alice@signed.test')).replace('Subject: signed', 'Subject: SIGNED');
  assert.equal((await send('sender@spf-pass.test', tampered)).reply, '554 5.7.1 Message rejected by content policy');

  // Where no DMARC policy decides, the message is accepted and the failure is recorded.
  const other = message('alice@nodmarc.test', 'signed');
  const key = { ...rsa, domain: 'nodmarc.test' };
  const headerChanged = (await signed(key, other, 'alice@nodmarc.test')).replace('Subject: signed', 'Subject: changed');
  const r1 = await send('sender@spf-pass.test', headerChanged);
  assert.match(r1.reply, /^250 /);
  assert.match(authResults(r1.body), /dkim=fail \(bad signature\) header\.i=@nodmarc\.test header\.s=rsa1/);
  const bodyChanged = (await signed(key, other, 'alice@nodmarc.test')).replace('Hello there.', 'Hello THERE.');
  const r2 = await send('sender@spf-pass.test', bodyChanged);
  assert.match(r2.reply, /^250 /);
  assert.match(authResults(r2.body), /dkim=neutral \(body hash did not verify\) header\.i=@nodmarc\.test header\.s=rsa1/);
});

test('DMARC: p=reject fails → 554 5.7.1; aligned DKIM passes even when SPF fails; p=quarantine → held; an unaligned signature does not help', { timeout: 30_000 }, async () => {
  // SPF passes for the envelope domain, but it is not the From: domain: no alignment.
  assert.equal((await send('sender@spf-pass.test', message('ceo@bank.test'))).reply, '554 5.7.1 Message rejected by content policy');
  // A valid signature, but by a domain that is not the From: domain.
  const text = message('ceo@bank.test');
  const { signatures } = await dkimSign(text, { signingDomain: 'stranger.test', selector: 'k1', privateKey: strangerKey.privateKey });
  const stranger = signatures + text;
  assert.equal((await send('sender@spf-pass.test', stranger)).reply, '554 5.7.1 Message rejected by content policy');

  // SPF fails (-all), DKIM is aligned and passes: DMARC passes and overrules the SPF failure.
  const aligned = await send('bounces@signed.test', await signed(rsa, message('alice@signed.test'), 'bounces@signed.test'));
  assert.match(aligned.reply, /^250 /);
  const ar = authResults(aligned.body);
  assert.match(ar, /spf=fail /);
  assert.match(ar, /dmarc=pass /);

  const q = await send('sender@spf-pass.test', message('deals@shop.test'));
  assert.match(q.reply, /^250 /);
  assert.equal(q.state, 'held', 'quarantined: stored held, not delivered');
  assert.match(authResults(q.body), /dmarc=fail \(p=QUARANTINE arc=none\) header\.from=shop\.test/);
});

test('DMARC tempfail: accepted with dmarc=temperror by default; 451 4.7.1 where the policy defers', { timeout: 30_000 }, async () => {
  const accepted = await send('sender@spf-pass.test', message('news@dmarc-temp.test'));
  assert.match(accepted.reply, /^250 /);
  assert.match(authResults(accepted.body), /dmarc=temperror /);
  assert.equal(
    (await send('sender@spf-pass.test', message('news@dmarc-temp.test'), '127.0.0.20')).reply,
    '451 4.7.1 Content check could not complete, try again later',
  );
});

test('a client that may relay is not checked (outbound mail): no Authentication-Results header', { timeout: 20_000 }, async () => {
  const r = await send('sender@spf-fail.test', message('ceo@bank.test'), '127.0.0.30');
  assert.match(r.reply, /^250 /);
  assert.ok(!/Authentication-Results:/i.test(r.body!));
});

test('a 20 MB signed message streams through the checks: DKIM verifies, memory does not grow with it', { timeout: 60_000 }, async () => {
  const line = Buffer.from(`${'m'.repeat(1022)}\r\n`);
  const block = Buffer.concat(Array.from({ length: 64 }, () => line)); // 64 KiB
  const blocks = (20 * 1024 * 1024) / block.length;
  const head = Buffer.from(message('alice@signed.test', 'big', ''));
  async function* whole(): AsyncGenerator<Buffer> {
    yield head;
    for (let i = 0; i < blocks; i++) yield block;
  }
  const signature = await new DkimSigner([ed]).sign(whole, 'alice@signed.test');
  const c = await SmtpTestClient.connect(gw.port);
  try {
    assert.equal(await c.code(), '220');
    await c.cmd('EHLO client.test');
    assert.equal(await c.cmd('MAIL FROM:<sender@spf-pass.test>'), '250 2.1.0');
    assert.equal(await c.cmd('RCPT TO:<bob@example.test>'), '250 2.1.5');
    assert.equal(await c.cmd('DATA'), '354');
    const used = (): number => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    global.gc?.();
    const base = used();
    let peak = base;
    const sampler = setInterval(() => {
      global.gc?.();
      peak = Math.max(peak, used());
    }, 100);
    c.write(signature);
    for await (const b of whole()) {
      if (!c.socket.write(b)) await new Promise((r) => c.socket.once('drain', r));
    }
    c.write('.\r\n');
    const r = await c.reply(30_000);
    clearInterval(sampler);
    assert.equal(r.code, 250, r.raw);
    const id = /queued as (\S+)/.exec(r.lines[0])![1];
    const stored = gw.gateway.store.readBody(id).subarray(0, 4096).toString('utf8');
    assert.match(authResults(stored), /dkim=pass header\.i=@signed\.test header\.s=ed1 header\.a=ed25519-sha256/);
    const growth = peak - base;
    console.log(`# memory growth during a 20 MB checked message: ${(growth / 1048576).toFixed(1)} MB`);
    assert.ok(growth < 16 * 1024 * 1024, `memory grew by ${(growth / 1048576).toFixed(1)} MB`);
  } finally {
    c.close();
  }
});

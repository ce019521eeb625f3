/**
 * Postfix's smtp-sink as the peer, where Debian's postfix package is installed (skipped
 * otherwise): one sink process per behaviour, each on its own loopback address, each the MX of
 * its own domain. `-r` answers 450 4.3.0, `-f` 500 5.3.0 (or the `-B` text), `-Q` 421 and
 * disconnect, `-q` drops the connection without a reply; `.` is the end of data; `-L` is LMTP.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoopbackDnsServer, type ZoneRecord } from '../support/loopback-dns-server.js';
import { startTestGateway } from '../support/test-gateway.js';
import { AcceptAllPolicyEngine } from '../../src/policy/session-policy.js';
import { ManualClock } from './manual-clock.js';
import { submit, DEFAULT_MESSAGE, T0 } from './harness.js';
import { parseDsn } from '../bounce/parse-dsn.js';

const SMTP_SINK = spawnSync('sh', ['-c', 'command -v smtp-sink'], { encoding: 'utf8' }).stdout.trim();

interface Peer {
  readonly domain: string;
  readonly args: readonly string[];
}

/** Behaviours, one domain each; the address is 127.0.0.(10 + index). */
const PEERS: readonly Peer[] = [
  { domain: 'ok.test', args: [] },
  { domain: 'rcpt-soft.test', args: ['-r', 'RCPT'] },
  { domain: 'rcpt-hard.test', args: ['-f', 'RCPT'] },
  { domain: 'rcpt-text.test', args: ['-f', 'RCPT', '-B', '550 5.1.1 No such user here'] },
  { domain: 'rcpt-softtext.test', args: ['-r', 'RCPT', '-b', '451 4.7.1 Greylisted, try again later'] },
  { domain: 'data-soft.test', args: ['-r', '.'] },
  { domain: 'data-hard.test', args: ['-f', '.'] },
  { domain: 'rcpt-421.test', args: ['-Q', 'RCPT'] },
  { domain: 'data-drop.test', args: ['-q', '.'] },
];

function waitForPort(host: string, port: number, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve) => {
    const attempt = (): void => {
      const s = net.connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) resolve(false);
        else setTimeout(attempt, 30);
      });
    };
    attempt();
  });
}

async function startSmtpSinks(dumpDir: string): Promise<{ port: number; children: ChildProcess[] }> {
  for (let tries = 0; tries < 5; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    const children: ChildProcess[] = [];
    const root = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
    PEERS.forEach((p, i) => {
      const dump = ['-D', join(dumpDir, p.domain)];
      children.push(spawn(SMTP_SINK, [...root, '-h', `mx.${p.domain}`, ...dump, ...p.args, `127.0.0.${10 + i}:${port}`, '50'], { stdio: 'ignore' }));
    });
    const up = await Promise.all(PEERS.map((_p, i) => waitForPort(`127.0.0.${10 + i}`, port)));
    if (up.every(Boolean)) return { port, children };
    for (const c of children) c.kill('SIGKILL');
  }
  throw new Error('could not start smtp-sink');
}

test('Postfix smtp-sink as the peer: 250, 450, 500, -B text, end-of-data rejects, 421, dropped connection', { timeout: 60_000, skip: SMTP_SINK === '' ? 'smtp-sink (Debian postfix) is not installed' : false }, async () => {
  const dumpDir = mkdtempSync(join(tmpdir(), 'postern-smtp-sink-'));
  chmodSync(dumpDir, 0o777); // smtp-sink writes as nobody
  const { port, children } = await startSmtpSinks(dumpDir);
  const records: ZoneRecord[] = PEERS.flatMap((p, i) => [
    { name: p.domain, type: 'MX', value: `mx.${p.domain}`, priority: 10 } as const,
    { name: `mx.${p.domain}`, type: 'A', value: `127.0.0.${10 + i}` } as const,
  ]);
  const dns = await new LoopbackDnsServer({ records }).start();
  const clock = new ManualClock(T0);
  const gw = await startTestGateway([
    `dns: { servers: ["${dns.address}"], cache_ttl: 0 }`,
    'domains: { local: [src.test] }',
    `delivery: { smtp_port: ${port}, tls: none, timeouts: { data_term: 5s, rcpt: 5s } }`,
  ].join('\n'), { policy: new AcceptAllPolicyEngine(), delivery: { clock, random: () => 0.5 } });
  try {
    const ids = new Map<string, string>();
    for (const p of PEERS) ids.set(p.domain, await submit(gw.port, 'a@src.test', [`user@${p.domain}`], DEFAULT_MESSAGE));
    const scheduler = gw.gateway.delivery!.scheduler;
    await scheduler.idle();
    await new Promise((r) => setImmediate(r));
    await scheduler.idle();
    const state = (domain: string): [string, string | null, string | null] => {
      const r = gw.gateway.store.getMessage(ids.get(domain)!)!.recipients[0];
      return [r.state, r.status, r.lastReply];
    };
    assert.equal(state('ok.test')[0], 'delivered');
    const dump = readFileSync(join(dumpDir, 'ok.test'), 'latin1');
    assert.match(dump, /X-Mail-Args: <a@src\.test>\n/, 'smtp-sink offers no SIZE, so none is sent');
    assert.match(dump, /X-Rcpt-Args: <user@ok\.test>/);
    assert.match(dump, /Message-ID: <t1@src\.test>\n\nHello\.\n\.dot line\n/, 'the body, dot-unstuffed by Postfix');

    assert.deepEqual(state('rcpt-soft.test'), ['queued', '4.3.0', '450 4.3.0 Error: command failed']);
    assert.deepEqual(state('rcpt-hard.test'), ['bounced', '5.3.0', '500 5.3.0 Error: command failed']);
    assert.deepEqual(state('rcpt-text.test'), ['bounced', '5.1.1', '550 5.1.1 No such user here']);
    assert.deepEqual(state('rcpt-softtext.test'), ['queued', '4.7.1', '451 4.7.1 Greylisted, try again later']);
    assert.deepEqual(state('data-soft.test').slice(0, 2), ['queued', '4.3.0']);
    assert.deepEqual(state('data-hard.test').slice(0, 2), ['bounced', '5.3.0']);
    assert.deepEqual(state('rcpt-421.test').slice(0, 2), ['queued', '4.0.0']);
    assert.match(state('rcpt-421.test')[2] ?? '', /^421 /);
    assert.deepEqual(state('data-drop.test').slice(0, 2), ['queued', '4.4.2']);

    // The three hard bounces came back to the sender as DSNs.
    const dsnDir = join(gw.dir, 'mail', 'src.test', 'a', 'new');
    assert.ok(existsSync(dsnDir));
    const { readdirSync } = await import('node:fs');
    const reports = readdirSync(dsnDir).map((f) => parseDsn(readFileSync(join(dsnDir, f))));
    const failed = reports.flatMap((d) => d.perRecipient).map((r) => [r.get('final-recipient'), r.get('status'), r.get('diagnostic-code')]).sort();
    assert.deepEqual(failed, [
      ['rfc822; user@data-hard.test', '5.3.0', 'smtp; 500 5.3.0 Error: command failed'],
      ['rfc822; user@rcpt-hard.test', '5.3.0', 'smtp; 500 5.3.0 Error: command failed'],
      ['rfc822; user@rcpt-text.test', '5.1.1', 'smtp; 550 5.1.1 No such user here'],
    ]);
  } finally {
    await gw.stop();
    for (const c of children) c.kill('SIGKILL');
    await dns.stop();
    rmSync(dumpDir, { recursive: true, force: true });
  }
});

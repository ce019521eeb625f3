/**
 * `postern policy explain` as a user runs it (a child process), against zone data on a loopback
 * DNS server: a client blocked by a DNSBL, a throttled one (matched by its forward-confirmed
 * name), an accepted one with reverse-DNS and sender-domain checks. The whole output is compared
 * with golden files in test/policy/golden/ (POSTERN_UPDATE_GOLDEN=1 rewrites them).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LoopbackDnsServer } from '../support/loopback-dns-server.js';
import { startPolicyDns } from './support/policy-fixtures.js';

const run = promisify(execFile);
const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const GOLDEN = new URL('./golden/', import.meta.url).pathname;

let dns: LoopbackDnsServer;
let dir: string;
let configFile: string;

before(async () => {
  dns = await startPolicyDns();
  dir = mkdtempSync(join(tmpdir(), 'postern-explain-'));
  configFile = join(dir, 'postern.yaml');
  writeFileSync(configFile, `hostname: mx.example.test
dns: { servers: ["${dns.address}"] }
timeouts: { dns: 2s }
domains: { local: [example.test] }
recipients: { valid: [alice@example.test] }
sender_groups:
  - { name: BLOCKLIST, match: [ip: 203.0.113.0/24, dnsbl: bl.test], policy: BLOCKED }
  - { name: SLOW, match: [rdns: .throttle.test], policy: THROTTLED }
  - { name: ALL, match: [all], policy: CHECKED }
policies:
  CHECKED: { reverse_dns: require_fcrdns, verify_sender_domain: true }
`);
});
after(async () => {
  await dns.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI without blocking this process (the DNS server answers from here). */
async function explain(args: string[]): Promise<string> {
  const r = await run(process.execPath, ['--import', 'tsx', MAIN, 'policy', 'explain', ...args, '--config', configFile], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.stderr, '');
  return r.stdout;
}

function assertGolden(name: string, actual: string): void {
  const file = join(GOLDEN, name);
  if (process.env.POSTERN_UPDATE_GOLDEN) writeFileSync(file, actual);
  assert.ok(existsSync(file), `test/policy/golden/${name} is missing: run with POSTERN_UPDATE_GOLDEN=1 and review it`);
  assert.equal(actual, readFileSync(file, 'utf8'), `differs from test/policy/golden/${name}`);
}

test('explain: a client listed in a DNSBL is BLOCKED with 554 5.7.1 at the greeting', { timeout: 60_000 }, async () => {
  const out = await explain(['--ip', '127.0.0.20', '--helo', 'spam.test', '--from', 'a@mx.test', '--to', 'alice@example.test']);
  assert.match(out, /^ {2}BLOCKLIST: dnsbl bl\.test: match \(listed in bl\.test\)\n {4}A 20\.0\.0\.127\.bl\.test → 127\.0\.0\.2$/m);
  assert.match(out, /^ {4}→ 554 5\.7\.1 mx\.example\.test Access denied$/m);
  assertGolden('explain-blocked.txt', out);
});

test('explain: a client whose confirmed name is under .throttle.test is THROTTLED', { timeout: 60_000 }, async () => {
  const out = await explain(['--ip', '127.0.0.30', '--helo', 'mx1.throttle.test', '--from', 'news@mx.test', '--to', 'alice@example.test', 'bob@elsewhere.test']);
  assert.match(out, /^ {2}→ SLOW \(sender_groups\[1\]\): policy THROTTLED$/m);
  assert.match(out, /^ {2}recipients per hour +20 → 453 4\.5\.3 Too many recipients this hour, try again later$/m);
  assertGolden('explain-throttled.txt', out);
});

test('explain: an accepted client, with its reverse-DNS and sender-domain checks and each recipient', { timeout: 60_000 }, async () => {
  const out = await explain(['--ip', '127.0.0.10', '--helo', 'good.example.test', '--from', 'a@mx.test', '--to', 'alice@example.test', 'carol@example.test', 'x@elsewhere.test']);
  assert.match(out, /^ {4}→ 250 2\.1\.5 Recipient <alice@example\.test> OK$/m);
  assert.match(out, /^ {4}→ 550 5\.1\.1 Recipient address rejected: User unknown$/m);
  assert.match(out, /^ {4}→ 550 5\.7\.1 Relay access denied$/m);
  assertGolden('explain-accepted.txt', out);
});

test('explain: the embedded default accepts an outside client and relays for loopback', { timeout: 60_000 }, async () => {
  const outside = await run(process.execPath, ['--import', 'tsx', MAIN, 'policy', 'explain', '--ip', '192.0.2.1', '--to', 'x@elsewhere.test'], { encoding: 'utf8', timeout: 30_000 });
  assert.match(outside.stdout, /^ {2}→ ALL \(sender_groups\[1\]\): policy ACCEPTED$/m);
  assert.match(outside.stdout, /^ {4}→ 550 5\.7\.1 Relay access denied$/m);
  const loopback = await run(process.execPath, ['--import', 'tsx', MAIN, 'policy', 'explain', '--ip', '::1', '--to', 'x@elsewhere.test'], { encoding: 'utf8', timeout: 30_000 });
  assert.match(loopback.stdout, /^ {2}→ RELAYLIST \(sender_groups\[0\]\): policy RELAYED$/m);
  assert.match(loopback.stdout, /^ {4}→ 250 2\.1\.5 Recipient <x@elsewhere\.test> OK$/m);
});

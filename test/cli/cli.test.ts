/**
 * The CLI as a user runs it: `config check`, `codes`, `queue ls`, in child processes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sendMessage } from '../support/smtp-test-client.js';
import { startTestGateway } from '../support/test-gateway.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

function postern(args: string[], cwd?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', cwd, timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('config check: a good file is OK; errors name the path and the line', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-cli-'));
  try {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'hostname: mx.example.test\nlisteners:\n  - { name: inbound, listen: 127.0.0.1:2525 }\n');
    const ok = postern(['config', 'check', good]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /good\.yaml: OK/);

    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'hostname: mx.example.test\nlisteners:\n  - name: inbound\n    listen: nowhere\nlimits:\n  max_recipients: 20\n');
    const r = postern(['config', 'check', bad]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /bad\.yaml:4:\d+: listeners\[0\]\.listen: expected host:port/);
    assert.match(r.stdout, /bad\.yaml:6:\d+: limits\.max_recipients: must be at least 100/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('codes: the catalogue as a table', { timeout: 30_000 }, () => {
  const r = postern(['codes']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^CODE\s+ENH\s+CLASS\s+ID\s+DEFAULT TEXT$/m);
  assert.match(r.stdout, /^554\s+5\.5\.2\s+hard\s+data\.bare-line-ending\s+/m);
  assert.match(r.stdout, /^453\s+4\.5\.3\s+soft\s+rcpt\.rate-limited\s+/m);
});

test('queue ls: shows what is queued', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-cli-'));
  const gw = await startTestGateway('', { dir });
  try {
    const id = await sendMessage(gw.port, { from: 'alice@client.test', to: ['bob@example.test', 'carol@example.test'], data: 'Subject: ls\r\n\r\nx\r\n' });
    const cfg = join(dir, 'cfg.yaml');
    writeFileSync(cfg, `store: { path: ${JSON.stringify(join(dir, 'queue'))} }\n`);
    const r = postern(['queue', 'ls', '--config', cfg]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^${id}\\s+queued\\s+\\d+\\s+.*<alice@client\\.test> -> bob@example\\.test, carol@example\\.test$`, 'm'));
    assert.match(r.stdout, /^1 message\(s\)$/m);
    const j = postern(['queue', 'ls', '--json', '--config', cfg]);
    assert.equal(JSON.parse(j.stdout.trim()).id, id);
  } finally {
    await gw.stop();
  }
});

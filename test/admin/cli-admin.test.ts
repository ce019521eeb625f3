/**
 * `postern queue …`, `postern track` and `postern status` as a user runs them (child processes)
 * against a running gateway: through its admin API, each action taking effect in the queue.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HARD_REPLY, SOFT_REPLY, messageWith, startOpsWorld, TOKEN, type OpsWorld } from './ops-world.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

/** Runs the CLI without blocking this process (the gateway under test lives in it). */
function postern(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function cliConfig(w: OpsWorld): string {
  const file = join(w.gw.dir, 'cli.yaml');
  const port = new URL(w.api).port;
  writeFileSync(file, `store: { path: ${JSON.stringify(w.gw.config.store.path)} }\nadmin: { listen: "127.0.0.1:${port}", token: "${TOKEN}" }\n`);
  return file;
}

test('postern track finds a message by sender, recipient and message-id; a bounced one shows the reply that bounced it', { timeout: 90_000 }, async () => {
  const w = await startOpsWorld();
  try {
    const hard = await w.send(['hard@dst.test'], { data: messageWith('cli.find@src.test', 'hard@dst.test') });
    const soft = await w.send(['soft@dst.test'], { from: 'other@src.test' });
    await w.settle();
    const cfg = cliConfig(w);
    const [byFrom, byTo, byMessageId] = await Promise.all([
      postern(['track', '--config', cfg, '--from', 'a@src.test']),
      postern(['track', '--config', cfg, '--to', 'soft@dst.test']),
      postern(['track', '--config', cfg, '--message-id', '<cli.find@src.test>']),
    ]);
    for (const r of [byFrom, byTo, byMessageId]) assert.equal(r.code, 0, r.stderr);
    assert.match(byFrom.stdout, new RegExp(`^${hard}  bounced$`, 'm'));
    assert.ok(!byFrom.stdout.includes(soft), 'only the sender asked for');
    // The reply that caused the bounce: on the recipient line and in the timeline (attempt and bounce).
    assert.ok(byFrom.stdout.includes(`hard@dst.test  bounced, 1 attempt(s): ${HARD_REPLY}`), byFrom.stdout);
    assert.match(byFrom.stdout, new RegExp(`attempt +hard +hard@dst\\.test via smtp:\\S*127\\.0\\.0\\.2\\S*: ${escape(HARD_REPLY)}`));
    assert.match(byFrom.stdout, new RegExp(`bounced +hard +hard@dst\\.test: ${escape(HARD_REPLY)}`));
    assert.match(byTo.stdout, new RegExp(`^${soft}  deferred$`, 'm'));
    assert.match(byTo.stdout, new RegExp(`deferred +soft +soft@dst\\.test: ${escape(SOFT_REPLY)} \\(next retry `));
    assert.match(byMessageId.stdout, new RegExp(`^${hard}  bounced$`, 'm'));
    assert.match(byMessageId.stdout, /Message-ID <cli\.find@src\.test>/);

    const none = await postern(['track', '--config', cfg, '--to', 'nobody@nowhere.test']);
    assert.equal(none.code, 1);
    assert.match(none.stdout, /No message found/);
  } finally {
    await w.stop();
  }
});

test('postern queue ls/show/hold/release/retry/bounce/delete and status work through the API', { timeout: 90_000 }, async () => {
  const w = await startOpsWorld();
  try {
    const a = await w.send(['soft1@dst.test']);
    const b = await w.send(['soft2@dst.test']);
    const c = await w.send(['soft3@other.test']);
    await w.settle();
    const cfg = cliConfig(w);

    const [ls, show] = await Promise.all([
      postern(['queue', 'ls', '--config', cfg, '--state', 'queued', '--domain', 'dst.test']),
      postern(['queue', 'show', a, '--config', cfg]),
    ]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, new RegExp(`^${a}\\s+queued\\s+\\d+\\s+.*<a@src\\.test> -> soft1@dst\\.test \\(deferred\\)$`, 'm'));
    assert.ok(!ls.stdout.includes(c), 'the domain filter applies');
    assert.match(ls.stdout, /^2 message\(s\)$/m);

    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /timeline\n {4}\S+ \S+ +connection +accepted/);
    assert.ok(show.stdout.includes(SOFT_REPLY));

    const hold = await postern(['queue', 'hold', a, '--config', cfg]);
    assert.equal(hold.code, 0, hold.stderr);
    assert.match(hold.stdout, new RegExp(`^${a}: hold done$`, 'm'));
    assert.equal(w.message(a).state, 'held');
    const release = await postern(['queue', 'release', '--all', '--config', cfg]);
    assert.equal(release.code, 0, release.stderr);
    assert.equal(w.message(a).state, 'queued');
    await w.settle();
    assert.equal(w.message(a).recipients[0].attempts, 2, 'released messages are due at once');

    // Bulk retry by domain, not on a terminal: one plain line per message and a tally.
    const retry = await postern(['queue', 'retry', '--domain', 'dst.test', '--config', cfg]);
    assert.equal(retry.code, 0, retry.stderr);
    assert.match(retry.stdout, new RegExp(`^${a}: retry done$`, 'm'));
    assert.match(retry.stdout, new RegExp(`^${b}: retry done$`, 'm'));
    assert.match(retry.stdout, /^retry: 2 done$/m);
    await w.settle();
    assert.equal(w.message(b).recipients[0].attempts, 2);
    assert.equal(w.message(c).recipients[0].attempts, 1, 'other domains are left alone');

    const [bounce, del] = await Promise.all([
      postern(['queue', 'bounce', b, '--config', cfg]),
      postern(['queue', 'delete', c, '--config', cfg]),
    ]);
    assert.equal(bounce.code, 0, bounce.stderr);
    assert.deepEqual([w.message(b).state, w.message(b).recipients[0].state], ['done', 'bounced']);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(w.message(c).recipients[0].state, 'deleted');
    const [again, status] = await Promise.all([
      postern(['queue', 'delete', c, '--config', cfg]),
      postern(['status', '--config', cfg]),
    ]);
    assert.equal(again.code, 1);
    assert.match(again.stdout, /not in a state this applies to/);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^source +api http:\/\/127\.0\.0\.1:\d+$/m);
    assert.match(status.stdout, /^connections +0 open$/m);
    assert.match(status.stdout, /^queue +\d+ queued/m);
    assert.match(status.stdout, /^last 24 h +\d+ delivered, \d+ soft bounces, \d+ hard bounces$/m);
  } finally {
    await w.stop();
  }
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

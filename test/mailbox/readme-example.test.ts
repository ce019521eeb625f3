/**
 * The README's local-mailbox example stays true: its config and users file load without errors
 * and say what the text next to them says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { analyseConfigText } from '../../src/config/load-config.js';
import { analyseUsersFileText } from '../../src/mailbox/users-file.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

function yamlBlock(firstLine: string): string {
  const blocks = [...README.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
  const block = blocks.find((b) => b.startsWith(firstLine));
  assert.ok(block, `a yaml block starting with ${firstLine}`);
  return block;
}

test('README: the local-mailbox config and users file are valid', () => {
  const config = analyseConfigText(yamlBlock('# postern.yaml'), 'postern.yaml', { baseDir: '/etc/postern' });
  assert.deepEqual(config.issues, []);
  assert.equal(config.config?.mailboxes.users_file, '/etc/postern/users.yaml');
  const users = analyseUsersFileText(yamlBlock('# users.yaml'), { localPartCase: 'insensitive' });
  assert.deepEqual(users.issues, []);
  assert.deepEqual(users.data?.users.map((u) => [u.address, u.quota, u.status]), [
    ['alice@example.test', 1024 ** 3, 'active'],
    ['bob@example.test', null, 'locked'],
  ]);
  assert.deepEqual(users.data?.forwarding.map((f) => [f.address, f.mode]), [['carol@example.test', 'forward'], ['dave@example.test', 'refer']]);
});

test('README: the quick start names the Maildir the embedded default delivers to', () => {
  assert.match(README, /ls var\/mail\/example\.test\/you\/new\//);
});

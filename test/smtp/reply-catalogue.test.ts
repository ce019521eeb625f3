/**
 * The catalogue itself: well-formed entries, the seed's 22 codes all present, every row of the
 * receiving specification present, and docs/reply-codes.md generated from it and current.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { REPLY_CATALOGUE, REPLY_IDS } from '../../src/smtp/reply-catalogue.js';
import { parseEnhancedStatus } from '../../src/smtp/enhanced-status.js';
import { renderReplyReferenceMarkdown } from '../../src/smtp/reply-reference.js';
import { encodeReply, reply } from '../../src/smtp/reply.js';

test('every entry: a valid code, an enhanced code of the same class (or none where the spec has none)', () => {
  for (const id of REPLY_IDS) {
    const e = REPLY_CATALOGUE[id];
    assert.ok(e.code >= 200 && e.code <= 559, id);
    if (e.enhanced === null) {
      assert.ok([220, 250, 334, 354].includes(e.code), `${id}: only the greeting, HELO/EHLO 250, AUTH's 334 and 354 lack an enhanced code`);
      continue;
    }
    const s = parseEnhancedStatus(e.enhanced);
    assert.ok(s, `${id}: ${e.enhanced}`);
    assert.equal(s.klass, Math.floor(e.code / 100) === 3 ? 2 : Math.floor(e.code / 100), `${id}: class of ${e.enhanced} vs ${e.code}`);
  }
});

test("the seed's 22 reply codes all have a situation", () => {
  const seed = [211, 214, 220, 221, 250, 251, 354, 421, 450, 451, 452, 453, 500, 501, 502, 503, 504, 550, 551, 552, 553, 554];
  const have = new Set(REPLY_IDS.map((id) => REPLY_CATALOGUE[id].code));
  for (const code of seed) assert.ok(have.has(code), `code ${code} missing`);
});

const SPEC = new URL('../../../shared/reply-codes.md', import.meta.url);

test('every code/enhanced pair of the receiving specification is in the catalogue', { skip: !existsSync(SPEC) && 'shared/reply-codes.md is not beside this checkout' }, () => {
  const spec = readFileSync(SPEC, 'utf8');
  const receiving = spec.slice(0, spec.indexOf('## Sending'));
  const pairs = new Set(REPLY_IDS.map((id) => `${REPLY_CATALOGUE[id].code} ${REPLY_CATALOGUE[id].enhanced ?? '—'}`));
  let rows = 0;
  for (const m of receiving.matchAll(/^\| (\d{3}) \| ([245]\.\d+\.\d+|—) \|/gm)) {
    rows++;
    assert.ok(pairs.has(`${m[1]} ${m[2]}`), `spec row ${m[1]} ${m[2]} has no catalogue entry`);
  }
  assert.ok(rows > 50, `parsed ${rows} spec rows`);
});

test('replies encode per RFC 5321 §4.2 with the enhanced code on every line', () => {
  assert.equal(encodeReply(reply('rcpt.unknown-user')), '550 5.1.1 Recipient address rejected: User unknown\r\n');
  assert.equal(encodeReply(reply('help.status', { status: 'a' }, ['b', 'c'])), '211-2.0.0 a\r\n211-2.0.0 b\r\n211 2.0.0 c\r\n');
  assert.equal(encodeReply(reply('greeting', { hostname: 'mx', banner: 'B' })), '220 mx ESMTP B\r\n');
  // A variable cannot inject a second line.
  assert.equal(encodeReply(reply('rcpt.ok', { address: 'a\r\n250 b' })), '250 2.1.5 Recipient <a??250 b> OK\r\n');
});

test('docs/reply-codes.md is generated from the catalogue and current (npm run docs)', () => {
  const committed = readFileSync(new URL('../../docs/reply-codes.md', import.meta.url), 'utf8');
  assert.equal(committed, renderReplyReferenceMarkdown(), 'docs/reply-codes.md is stale: run `npm run docs`');
});

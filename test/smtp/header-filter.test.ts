/**
 * The streaming header-field filter: Authentication-Results fields in our name are dropped,
 * everything else passes byte for byte, however the message is cut into chunks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HeaderFieldFilter, isAuthenticationResultsOf } from '../../src/smtp/header-filter.js';

const ours = isAuthenticationResultsOf('mx.test');

function run(message: string, cuts: readonly number[], max = 1 << 20): { out: string; dropped: number } {
  const f = new HeaderFieldFilter(ours, max);
  const input = Buffer.from(message, 'latin1');
  const parts: Buffer[] = [];
  let i = 0;
  let k = 0;
  while (i < input.length) {
    const n = cuts.length === 0 ? input.length : Math.max(1, cuts[k++ % cuts.length]);
    parts.push(...f.write(input.subarray(i, i + n)));
    i += n;
  }
  parts.push(...f.end());
  return { out: Buffer.concat(parts).toString('latin1'), dropped: f.dropped };
}

test('which fields are ours: the authserv-id, in any case, after comments; not a look-alike', () => {
  assert.equal(ours('Authentication-Results: mx.test; dmarc=pass'), true);
  assert.equal(ours('authentication-results:MX.TEST.;spf=pass'), true);
  assert.equal(ours('Authentication-Results: (forged) mx.test;\r\n dkim=pass'), true);
  assert.equal(ours('Authentication-Results: mx.test.evil.test; dmarc=pass'), false);
  assert.equal(ours('Authentication-Results: other.test; dmarc=pass'), false);
  assert.equal(ours('ARC-Authentication-Results: i=1; mx.test; dmarc=pass'), false);
  assert.equal(ours('X-Authentication-Results: mx.test; dmarc=pass'), false);
});

test('forged results in our name are dropped (folded ones whole); others stay; the body is untouched', () => {
  const msg = [
    'Authentication-Results: mx.test; dmarc=pass',
    'From: a@b.test',
    'Authentication-Results: mx.test;',
    '\tdkim=pass header.d=b.test;',
    ' spf=pass',
    'Authentication-Results: other.test; spf=fail',
    'Subject: s',
    '',
    'Authentication-Results: mx.test; this is body text',
    '',
  ].join('\r\n');
  const { out, dropped } = run(msg, [7]);
  assert.equal(dropped, 2);
  assert.equal(out, 'From: a@b.test\r\nAuthentication-Results: other.test; spf=fail\r\nSubject: s\r\n\r\nAuthentication-Results: mx.test; this is body text\r\n');
});

test('property: any chunking gives the same bytes; without fields of ours, the output is the input', () => {
  const field = fc.constantFrom('From: a@b.test', 'Subject: x', 'Received: from x\r\n\tby y', 'X-Long: a\r\n b\r\n c', 'Authentication-Results: other.test; none');
  const ourField = fc.constantFrom('Authentication-Results: mx.test; dmarc=pass', 'Authentication-Results: MX.test;\r\n spf=pass');
  fc.assert(fc.property(
    fc.array(fc.oneof(field, ourField), { maxLength: 8 }),
    fc.string({ unit: 'binary-ascii', maxLength: 200 }),
    fc.array(fc.integer({ min: 1, max: 30 }), { maxLength: 5 }),
    fc.boolean(),
    (fields, body, cuts, withBody) => {
      const message = withBody ? `${fields.map((f) => `${f}\r\n`).join('')}\r\n${body}` : fields.map((f) => `${f}\r\n`).join('');
      const expected = withBody
        ? `${fields.filter((f) => !ours(f)).map((f) => `${f}\r\n`).join('')}\r\n${body}`
        : fields.filter((f) => !ours(f)).map((f) => `${f}\r\n`).join('');
      assert.equal(run(message, cuts).out, expected);
      assert.equal(run(message, []).out, expected);
    },
  ), { numRuns: 500 });
});

test('a header section past the limit passes on unfiltered (the session refuses that message anyway)', () => {
  const long = `${'X-Pad: y\r\n'.repeat(50)}Authentication-Results: mx.test; dmarc=pass\r\n\r\nbody`;
  const { out, dropped } = run(long, [64], 200);
  assert.equal(dropped, 0);
  assert.equal(out, long);
});

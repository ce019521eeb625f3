/** The reverse-DNS requirement against the facts, as a table: pass, fail (550 5.7.25) or temporary (450 4.7.25). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ReverseDnsCheck } from '../../src/config/policy-schema.js';
import type { ReverseDnsFacts } from '../../src/policy/client-dns-facts.js';
import { checkReverseDns } from '../../src/policy/reverse-dns-check.js';

const facts = (f: Partial<ReverseDnsFacts>): ReverseDnsFacts => ({ ptr: 'found', names: ['a.test'], confirmed: null, forwardTemporary: false, dns: [], ...f });

test('reverse DNS requirements', () => {
  const rows: [ReverseDnsCheck, Partial<ReverseDnsFacts>, string][] = [
    ['none', { ptr: 'none', names: [] }, 'pass'],
    ['none', { ptr: 'temporary', names: [] }, 'pass'],
    ['require_ptr', { ptr: 'none', names: [] }, 'fail'],
    ['require_ptr', { ptr: 'temporary', names: [] }, 'temporary'],
    ['require_ptr', {}, 'pass'],
    ['require_fcrdns', { ptr: 'none', names: [] }, 'fail'],
    ['require_fcrdns', { ptr: 'temporary', names: [] }, 'temporary'],
    ['require_fcrdns', {}, 'fail'],
    ['require_fcrdns', { forwardTemporary: true }, 'temporary'],
    ['require_fcrdns', { confirmed: 'a.test' }, 'pass'],
    ['require_fcrdns', { confirmed: 'a.test', forwardTemporary: true }, 'pass'],
  ];
  for (const [requirement, f, expected] of rows) {
    assert.equal(checkReverseDns(requirement, facts(f)).result, expected, `${requirement} ${JSON.stringify(f)}`);
  }
});

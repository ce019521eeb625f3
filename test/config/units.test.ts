/**
 * Sizes and durations of the config file: what parses to how many bytes and milliseconds, and
 * what is refused with which message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  durationSchema, formatDuration, formatSize, parseDuration, parseSize, positiveSizeSchema, sizeSchema,
} from '../../src/config/units.js';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

test('sizes parse to bytes, with K, M, G as multiples of 1024', () => {
  const cases: [string | number, number][] = [
    [1048576, 1048576],
    [0, 0],
    ['0', 0],
    ['512', 512],
    ['512B', 512],
    ['512K', 512 * KiB],
    ['512KB', 512 * KiB],
    ['512KiB', 512 * KiB],
    ['512kb', 512 * KiB],
    ['20M', 20 * MiB],
    ['20MB', 20 * MiB],
    ['20MiB', 20 * MiB],
    ['20 MB', 20 * MiB],
    [' 20MB ', 20 * MiB],
    ['100MB', 100 * MiB],
    ['1G', GiB],
    ['1GB', GiB],
    ['1GiB', GiB],
    ['1.5MB', 1.5 * MiB],
    ['2TB', 2 * 1024 ** 4],
  ];
  for (const [input, bytes] of cases) {
    assert.equal(parseSize(input), bytes, `parseSize(${JSON.stringify(input)})`);
    assert.deepEqual(sizeSchema.safeParse(input), { success: true, data: bytes });
  }
});

test('bad sizes are refused with "expected a size like 20MB"', () => {
  const bad: unknown[] = ['', 'MB', 'lots', '20 megabytes', '20XB', '-1', '-1MB', '1.5', '1e6', '0x10', -1, 1.5, NaN, Infinity, true, null, [20], { mb: 20 }];
  for (const input of bad) {
    const result = sizeSchema.safeParse(input);
    assert.equal(result.success, false, `accepted ${JSON.stringify(input)}`);
    assert.match(result.error?.issues[0]?.message ?? '', /^expected a size like 20MB/, JSON.stringify(input));
    if (typeof input === 'string' || typeof input === 'number') {
      assert.throws(() => parseSize(input), { name: 'RangeError', message: /^expected a size like 20MB/ });
    }
  }
});

test('a positive size refuses 0', () => {
  assert.equal(positiveSizeSchema.safeParse('0MB').success, false);
  assert.equal(positiveSizeSchema.safeParse('1').success, true);
});

test('durations parse to milliseconds; plain numbers are seconds', () => {
  const cases: [string | number, number][] = [
    [30, 30_000],
    [0.25, 250],
    ['30', 30_000],
    ['250ms', 250],
    ['60s', 60_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['72h', 72 * 3_600_000],
    ['1d', 86_400_000],
    ['1h30m', 5_400_000],
    ['1h 30m', 5_400_000],
    ['1.5s', 1500],
    ['0s', 0],
  ];
  for (const [input, ms] of cases) {
    assert.equal(parseDuration(input), ms, `parseDuration(${JSON.stringify(input)})`);
    assert.deepEqual(durationSchema.safeParse(input), { success: true, data: ms });
  }
});

test('bad durations are refused with "expected a duration like 5m"', () => {
  const bad: unknown[] = ['', 'm', '5x', '5M', '5 minutes', '1h30', 'h1', '-5m', '5m-', -1, NaN, Infinity, false, null, ['5m']];
  for (const input of bad) {
    const result = durationSchema.safeParse(input);
    assert.equal(result.success, false, `accepted ${JSON.stringify(input)}`);
    assert.match(result.error?.issues[0]?.message ?? '', /^expected a duration like 5m/, JSON.stringify(input));
    if (typeof input === 'string' || typeof input === 'number') {
      assert.throws(() => parseDuration(input), { name: 'RangeError', message: /^expected a duration like 5m/ });
    }
  }
});

test('sizes and durations format back to config notation', () => {
  assert.equal(formatSize(100 * MiB), '100MB');
  assert.equal(formatSize(1536 * KiB), '1536KB');
  assert.equal(formatSize(GiB), '1GB');
  assert.equal(formatSize(1000), '1000');
  assert.equal(formatDuration(300_000), '5m');
  assert.equal(formatDuration(90_000), '90s');
  assert.equal(formatDuration(250), '250ms');
  assert.equal(formatDuration(86_400_000), '1d');
});
